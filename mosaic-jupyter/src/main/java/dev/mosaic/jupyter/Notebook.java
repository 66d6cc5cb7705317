package dev.mosaic.jupyter;

import java.awt.image.BufferedImage;

/**
 * Helpers every cell sees ({@code import static dev.mosaic.jupyter.Notebook.*} is run at start):
 * {@code display(x)} publishes a value now (a chart or image as PNG), {@code check(cond, msg)}
 * fails the cell when a notebook's own assertion does not hold (Java's {@code assert} is off).
 */
public final class Notebook {
  private static volatile MosaicKernel kernel;

  private Notebook() {}

  static void attach(MosaicKernel k) {
    kernel = k;
  }

  /** Shows {@code value} as display data: PNG for images, charts and PNG bytes, else text. */
  public static void display(Object value) {
    MosaicKernel k = kernel;
    if (k == null) {
      System.out.println(Displays.text(value));
      return;
    }
    k.display(Displays.of(value));
  }

  /** Shows a chart (anything with {@code createBufferedImage(int, int)}) at the given size. */
  public static void display(Object chart, int width, int height) {
    BufferedImage img = Displays.renderChart(chart, width, height);
    display(img != null ? img : chart);
  }

  /** Fails the cell with {@code message} unless {@code condition} holds. */
  public static void check(boolean condition, String message) {
    if (!condition) {
      throw new AssertionError("check failed: " + message);
    }
  }
}
