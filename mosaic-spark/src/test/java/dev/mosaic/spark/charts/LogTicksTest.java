package dev.mosaic.spark.charts;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.geom.Rectangle2D;
import java.awt.image.BufferedImage;
import java.text.AttributedCharacterIterator;
import java.text.CharacterIterator;
import java.util.List;
import java.util.Map;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.AxisState;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.axis.LogTick;
import org.jfree.chart.axis.Tick;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.ui.RectangleEdge;
import org.junit.jupiter.api.Test;

/** Chart fixes of issue #16: readable log ticks, and coinciding series that stay visible. */
class LogTicksTest {
  @Test
  void labelsAreIntegersOrSi() {
    assertEquals("16384", LogTicks.TickFormat.label(16384, true));
    assertEquals("1048576", LogTicks.TickFormat.label(1 << 20, true));
    assertEquals("0.5", LogTicks.TickFormat.label(0.5, true));
    assertEquals("0.1", LogTicks.TickFormat.label(0.1, false));
    assertEquals("1", LogTicks.TickFormat.label(1, false));
    assertEquals("100", LogTicks.TickFormat.label(100, false));
    assertEquals("1k", LogTicks.TickFormat.label(1000, false));
    assertEquals("10M", LogTicks.TickFormat.label(1e7, false));
    assertEquals("39.8", LogTicks.TickFormat.label(Math.pow(10, 1.6), false));
  }

  @Test
  void ticksSitOnWholePowers() {
    assertEquals(List.of("1024", "2048", "4096", "8192", "16384", "32768", "65536"),
        ticks(LogTicks.axis("n", 2), 1000, 70_000));
    assertEquals(List.of("1", "10", "100"), ticks(LogTicks.axis("MiB", 10), 0.9, 150));
  }

  @Test
  void coincidingSeriesStayVisible() {
    double[][] same = {{1024, 5}, {4096, 50}, {16384, 500}};
    Map<String, double[][]> two = new java.util.LinkedHashMap<>();
    two.put("ring", same);
    two.put("ulysses", same);
    JFreeChart chart = Charts.lines("t", "n", "MiB", two, true, true);
    XYPlot plot = chart.getXYPlot();
    chart.setAntiAlias(false); // exact series colours to count
    BufferedImage img = chart.createBufferedImage(600, 400);
    for (int s = 0; s < 2; s++) {
      Color c = (Color) ((XYLineAndShapeRenderer) plot.getRenderer()).lookupSeriesPaint(s);
      int n = count(img, c.getRGB());
      assertTrue(n > 100, "series " + s + " shows in " + n + " pixels of its colour");
    }
  }

  @Test
  void kernelChartShowsThePeakBesideTheRuns() {
    List<dev.mosaic.kernels.bench.KernelBenchmark.Row> rows = List.of(
        new dev.mosaic.kernels.bench.KernelBenchmark.Row(1024, false, 0.01, 20, 1, 3),
        new dev.mosaic.kernels.bench.KernelBenchmark.Row(1024, true, 0.01, 15, 1, 3));
    JFreeChart chart = Charts.kernel(rows, 64.0);
    XYPlot plot = chart.getXYPlot();
    assertEquals(1, plot.getRangeMarkers(org.jfree.chart.ui.Layer.FOREGROUND).size());
    assertTrue(plot.getRangeAxis().getUpperBound() >= 64.0, "the peak is in view");
    assertTrue(chart.createBufferedImage(600, 400) != null);
  }

  private static int count(BufferedImage img, int rgb) {
    int n = 0;
    for (int y = 0; y < img.getHeight(); y++) {
      for (int x = 0; x < img.getWidth(); x++) {
        if ((img.getRGB(x, y) & 0xffffff) == (rgb & 0xffffff)) {
          n++;
        }
      }
    }
    return n;
  }

  /** A tick's label: LogAxis keeps it as an AttributedString, not as text. */
  private static String text(Tick t) {
    if (t instanceof LogTick lt && lt.getAttributedLabel() != null) {
      StringBuilder sb = new StringBuilder();
      AttributedCharacterIterator it = lt.getAttributedLabel().getIterator();
      for (char c = it.first(); c != CharacterIterator.DONE; c = it.next()) {
        sb.append(c);
      }
      return sb.toString();
    }
    return t.getText() == null ? "" : t.getText();
  }

  private static List<String> ticks(LogAxis axis, double lo, double hi) {
    axis.setRange(lo, hi);
    BufferedImage img = new BufferedImage(800, 400, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    try {
      List<? extends Tick> ticks = axis.refreshTicks(g, new AxisState(),
          new Rectangle2D.Double(0, 0, 800, 400), RectangleEdge.BOTTOM);
      return ticks.stream().map(LogTicksTest::text).filter(t -> !t.isEmpty()).toList();
    } finally {
      g.dispose();
    }
  }
}
