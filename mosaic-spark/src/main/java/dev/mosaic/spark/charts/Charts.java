package dev.mosaic.spark.charts;

import dev.mosaic.kernels.bench.KernelBenchmark;
import dev.mosaic.spark.bench.StrategyBenchmark;
import dev.mosaic.spark.plan.Planner;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.CategoryLabelPositions;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.SeriesRenderingOrder;
import org.jfree.chart.plot.ValueMarker;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.ui.RectangleAnchor;
import org.jfree.chart.ui.TextAnchor;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/**
 * Charts of the planner's and the benchmarks' numbers with JFreeChart, rendered headless as PNG
 * (for {@code --plot FILE.png} and the notebooks, which show a {@link JFreeChart} as an image).
 */
public final class Charts {
  public static final int WIDTH = 900;
  public static final int HEIGHT = 500;
  private static final double MIB = 1 << 20;

  static {
    System.setProperty("java.awt.headless", "true");
  }

  private Charts() {}

  /** Grouped bars: for each series (legend entry) a value per category. */
  public static JFreeChart bars(String title, String categoryLabel, String valueLabel,
      Map<String, Map<String, Double>> series) {
    DefaultCategoryDataset data = new DefaultCategoryDataset();
    series.forEach((s, values) -> values.forEach((c, v) -> data.addValue(v, s, c)));
    JFreeChart chart = ChartFactory.createBarChart(title, categoryLabel, valueLabel, data,
        PlotOrientation.VERTICAL, true, false, false);
    CategoryPlot plot = chart.getCategoryPlot();
    plot.getDomainAxis().setCategoryLabelPositions(CategoryLabelPositions.UP_45);
    style(chart);
    return chart;
  }

  /** Lines through (x, y) points per series; log scales where asked. */
  public static JFreeChart lines(String title, String xLabel, String yLabel,
      Map<String, double[][]> series, boolean logX, boolean logY) {
    XYSeriesCollection data = new XYSeriesCollection();
    series.forEach((name, pts) -> {
      XYSeries s = new XYSeries(name);
      for (double[] p : pts) {
        s.add(p[0], p[1]);
      }
      data.addSeries(s);
    });
    JFreeChart chart = ChartFactory.createXYLineChart(title, xLabel, yLabel, data,
        PlotOrientation.VERTICAL, true, false, false);
    XYPlot plot = chart.getXYPlot();
    if (logX) {
      LogAxis ax = LogTicks.axis(xLabel, 2);
      ax.setSmallestValue(1);
      plot.setDomainAxis(ax);
    }
    if (logY) {
      plot.setRangeAxis(LogTicks.axis(yLabel, 10));
    }
    XYLineAndShapeRenderer renderer = (XYLineAndShapeRenderer) plot.getRenderer();
    renderer.setDefaultShapesVisible(true);
    // Series that coincide (strategies with the same memory) must stay visible: later series are
    // drawn on top and thinner, so every earlier one shows as a wider band around them.
    plot.setSeriesRenderingOrder(SeriesRenderingOrder.FORWARD);
    int n = data.getSeriesCount();
    for (int i = 0; i < n; i++) {
      renderer.setSeriesStroke(i, new BasicStroke((float) Math.min(9, 1.5 + 2 * (n - 1 - i)),
          BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND));
    }
    style(chart);
    return chart;
  }

  /** {@code plan}: memory per device and bytes sent per device per layer for each candidate. */
  public static JFreeChart plan(Planner.Problem pr, List<Planner.Candidate> candidates) {
    Map<String, Map<String, Double>> series = new java.util.LinkedHashMap<>();
    Map<String, Double> mem = new java.util.LinkedHashMap<>();
    Map<String, Double> sent = new java.util.LinkedHashMap<>();
    Map<String, Double> inter = new java.util.LinkedHashMap<>();
    for (Planner.Candidate c : candidates) {
      String k = c.spec().toString();
      mem.put(k, c.memory() / MIB);
      sent.put(k, c.bytesSent() / MIB);
      inter.put(k, c.interNodeBytes() / MIB);
    }
    series.put("memory per device (MiB)", mem);
    series.put("sent per device per layer (MiB)", sent);
    if (pr.nodes() > 1) {
      series.put("across nodes (MiB)", inter);
    }
    return bars(String.format("Plan: %,d tokens, %d heads x %d, %d devices / %d node(s)",
        pr.seq(), pr.heads(), pr.headDim(), pr.devices(), pr.nodes()), "strategy", "MiB", series);
  }

  /** {@code bench kernel}: GFLOP/s against sequence length, causal and not. */
  public static JFreeChart kernel(List<KernelBenchmark.Row> rows) {
    Map<String, double[][]> series = new java.util.LinkedHashMap<>();
    for (boolean causal : new boolean[] {false, true}) {
      double[][] pts = rows.stream().filter(r -> r.causal() == causal)
          .map(r -> new double[] {r.n(), r.gflops()}).toArray(double[][]::new);
      if (pts.length > 0) {
        series.put(causal ? "causal" : "full", pts);
      }
    }
    return lines("CPU flash kernel", "sequence length n", "GFLOP/s", series, true, false);
  }

  /**
   * {@link #kernel(List)} with this machine's measured FMA peak drawn as a line, so the kernel's
   * numbers read against the ceiling of the machine that produced them.
   */
  public static JFreeChart kernel(List<KernelBenchmark.Row> rows, double peakGflops) {
    JFreeChart chart = kernel(rows);
    ValueMarker peak = new ValueMarker(peakGflops, new Color(0xB22222),
        new BasicStroke(1.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f,
            new float[] {6f, 4f}, 0f));
    peak.setLabel(String.format("FMA peak %.1f GFLOP/s", peakGflops));
    peak.setLabelAnchor(RectangleAnchor.TOP_LEFT);
    peak.setLabelTextAnchor(TextAnchor.BOTTOM_LEFT);
    XYPlot plot = chart.getXYPlot();
    plot.addRangeMarker(peak);
    // Keep the marker in view: the axis would otherwise fit the data only.
    double top = Math.max(plot.getRangeAxis().getUpperBound(), peakGflops * 1.1);
    plot.getRangeAxis().setUpperBound(top);
    return chart;
  }

  /** {@code bench ring|strategies}: seconds per call for each strategy, and the local kernel. */
  public static JFreeChart strategies(List<StrategyBenchmark.Result> results) {
    Map<String, Double> dist = new java.util.LinkedHashMap<>();
    Map<String, Double> local = new java.util.LinkedHashMap<>();
    String title = "Strategies";
    for (StrategyBenchmark.Result r : results) {
      dist.put(r.strategy(), r.ringSeconds());
      if (!Double.isNaN(r.localSeconds())) {
        local.put(r.strategy(), r.localSeconds());
      }
      title = String.format("%,d tokens, %d heads x %d, %s, %d tasks", r.tokens(), r.heads(),
          r.headDim(), r.causal() ? "causal" : "full", r.sp());
    }
    Map<String, Map<String, Double>> series = new java.util.LinkedHashMap<>();
    series.put("sharded over tasks (s)", dist);
    if (!local.isEmpty()) {
      series.put("local kernel, same cores (s)", local);
    }
    return bars(title, "strategy", "seconds per call", series);
  }

  public static BufferedImage image(JFreeChart chart, int width, int height) {
    return chart.createBufferedImage(width, height);
  }

  public static byte[] png(JFreeChart chart, int width, int height) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try {
      ChartUtils.writeChartAsPNG(out, chart, width, height);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }

  /** Writes the chart as a PNG file (parent folders created). */
  public static Path write(JFreeChart chart, Path file, int width, int height) throws IOException {
    Path parent = file.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
    Files.write(file, png(chart, width, height));
    return file;
  }

  public static Path write(JFreeChart chart, Path file) throws IOException {
    return write(chart, file, WIDTH, HEIGHT);
  }

  private static void style(JFreeChart chart) {
    chart.setBackgroundPaint(Color.WHITE);
    chart.getPlot().setBackgroundPaint(new Color(0xF7F7F7));
  }
}
