package dev.mosaic.spark.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The application jar as spark-submit gets it (issue #16): {@code plan --plot} runs from it with
 * only Spark's jars beside it, as on a cluster whose Spark has no JFreeChart.
 */
@Timeout(300)
class AppJarIT {
  @TempDir Path dir;

  @Test
  void planPlotsFromTheAppJarAlone() throws IOException, InterruptedException {
    Path app = appJar();
    try (JarFile jar = new JarFile(app.toFile())) {
      assertNotNull(jar.getEntry("org/jfree/chart/JFreeChart.class"), app + " bundles JFreeChart");
      assertNotNull(jar.getEntry("dev/mosaic/spark/cli/Mosaic.class"), app + " holds the CLI");
    }
    Path png = dir.resolve("plan.png");
    List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "--add-modules=jdk.incubator.vector", "-Xmx512m", "-cp", classPath(app),
        "dev.mosaic.spark.cli.Mosaic", "plan", "--seq", "65536", "--heads", "8", "--head-dim",
        "64", "--gpus", "4", "--plot", png.toString());
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "plan timed out:\n" + out);
    assertEquals(0, p.exitValue(), out);
    assertTrue(out.contains("Chart: " + png), out);
    byte[] head = Files.readAllBytes(png);
    assertTrue(head.length > 1000 && head[1] == 'P' && head[2] == 'N' && head[3] == 'G',
        "a PNG of " + head.length + " bytes");
  }

  /** mosaic-spark-VERSION-app.jar beside the plain jar failsafe names. */
  private static Path appJar() {
    String plain = System.getProperty("mosaic.appJar");
    assertNotNull(plain, "failsafe sets mosaic.appJar");
    Path app = Path.of(plain.replaceAll("\\.jar$", "-app.jar"));
    assertTrue(Files.isRegularFile(app), "no " + app + " (mvn package builds it)");
    return app;
  }

  /**
   * The app jar and what a Spark distribution holds: the test class path's jars without Mosaic's
   * own and without JFreeChart.
   */
  private static String classPath(Path app) {
    String cp = System.getProperty("surefire.test.class.path",
        System.getProperty("java.class.path"));
    List<String> out = new ArrayList<>(List.of(app.toString()));
    for (String entry : cp.split(File.pathSeparator)) {
      String name = Path.of(entry).getFileName().toString();
      if (entry.endsWith(".jar") && !name.startsWith("mosaic-") && !name.startsWith("jfreechart")
          && !name.startsWith("junit") && !name.startsWith("surefire")) {
        out.add(entry);
      }
    }
    return String.join(File.pathSeparator, out);
  }
}
