package dev.mosaic.jupyter;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.reflect.Method;
import java.util.Arrays;
import java.util.Base64;
import javax.imageio.ImageIO;
import org.dflib.jjava.jupyter.kernel.display.DisplayData;

/**
 * How a value shows in a notebook: a {@link BufferedImage}, a chart (any object with a public
 * {@code createBufferedImage(int, int)}, such as JFreeChart's {@code JFreeChart}) or PNG bytes
 * become {@code image/png}; everything else {@code text/plain}.
 */
public final class Displays {
  /** Size of a chart rendered without an explicit size. */
  public static final int CHART_WIDTH = 800;
  public static final int CHART_HEIGHT = 450;
  private static final byte[] PNG_MAGIC = {(byte) 0x89, 'P', 'N', 'G'};

  private Displays() {}

  public static DisplayData of(Object value) {
    if (value == null) {
      return null;
    }
    if (value instanceof DisplayData d) {
      return d;
    }
    if (value instanceof byte[] b && isPng(b)) {
      return png(b, "<PNG image, " + b.length + " bytes>");
    }
    if (value instanceof BufferedImage img) {
      return png(encode(img), "<image " + img.getWidth() + "x" + img.getHeight() + ">");
    }
    BufferedImage chart = renderChart(value, CHART_WIDTH, CHART_HEIGHT);
    if (chart != null) {
      return png(encode(chart), "<" + value.getClass().getSimpleName() + ">");
    }
    return new DisplayData(text(value));
  }

  static boolean isPng(byte[] b) {
    return b.length > PNG_MAGIC.length
        && Arrays.equals(Arrays.copyOf(b, PNG_MAGIC.length), PNG_MAGIC);
  }

  static DisplayData png(byte[] bytes, String text) {
    DisplayData d = new DisplayData(text);
    d.putData("image/png", Base64.getEncoder().encodeToString(bytes));
    return d;
  }

  /** A chart-like object drawn at the given size, or null when it is not one. */
  static BufferedImage renderChart(Object value, int width, int height) {
    try {
      Method m = value.getClass().getMethod("createBufferedImage", int.class, int.class);
      Object img = m.invoke(value, width, height);
      return img instanceof BufferedImage b ? b : null;
    } catch (NoSuchMethodException e) {
      return null;
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException("could not render " + value.getClass().getName(), e);
    }
  }

  static byte[] encode(BufferedImage img) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try {
      ImageIO.write(img, "png", out);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }

  static String text(Object v) {
    if (v instanceof Object[] a) {
      return Arrays.deepToString(a);
    }
    if (v instanceof float[] a) {
      return Arrays.toString(a);
    }
    if (v instanceof double[] a) {
      return Arrays.toString(a);
    }
    if (v instanceof int[] a) {
      return Arrays.toString(a);
    }
    if (v instanceof long[] a) {
      return Arrays.toString(a);
    }
    return String.valueOf(v);
  }
}
