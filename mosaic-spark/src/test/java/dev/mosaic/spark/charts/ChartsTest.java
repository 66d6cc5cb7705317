package dev.mosaic.spark.charts;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.bench.KernelBenchmark;
import dev.mosaic.spark.plan.Planner;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.jfree.chart.JFreeChart;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ChartsTest {

  @Test
  void planChartIsAPngOfTheAskedSize(@TempDir Path dir) throws Exception {
    Planner.Problem pr = new Planner.Problem(150_000, 8, 16, 4, 2, 16L << 30, false);
    List<Planner.Candidate> cs = Planner.candidates(pr);
    assertFalse(cs.isEmpty());
    JFreeChart chart = Charts.plan(pr, cs);
    Path file = Charts.write(chart, dir.resolve("sub/plan.png"), 640, 360);
    BufferedImage img = ImageIO.read(file.toFile());
    assertNotNull(img, "ImageIO decodes the PNG");
    assertEquals(640, img.getWidth());
    assertEquals(360, img.getHeight());
    assertEquals("true", System.getProperty("java.awt.headless"));
    assertEquals(cs.size(), chart.getCategoryPlot().getDataset().getColumnCount());
  }

  @Test
  void kernelChartRendersInMemory() throws Exception {
    List<KernelBenchmark.Row> rows = List.of(
        new KernelBenchmark.Row(1024, false, 0.01, 180, 1, 3),
        new KernelBenchmark.Row(1024, true, 0.01, 100, 1, 3),
        new KernelBenchmark.Row(4096, false, 0.2, 200, 1, 3),
        new KernelBenchmark.Row(4096, true, 0.1, 190, 1, 3));
    byte[] png = Charts.png(Charts.kernel(rows), Charts.WIDTH, Charts.HEIGHT);
    BufferedImage img = ImageIO.read(new ByteArrayInputStream(png));
    assertEquals(Charts.WIDTH, img.getWidth());
    assertEquals(Charts.HEIGHT, img.getHeight());
    assertTrue(Files.exists(Path.of(".")));
    assertEquals(2, Charts.kernel(rows).getXYPlot().getDataset().getSeriesCount());
  }
}
