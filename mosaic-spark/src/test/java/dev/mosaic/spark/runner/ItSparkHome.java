package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * The Spark home the local-cluster integration tests launch executors from: failsafe points
 * SPARK_HOME at target/it-spark-home, and this fills it with an empty RELEASE file and links to the
 * test class path's jars.
 */
public final class ItSparkHome {
  private ItSparkHome() {}

  public static void prepare() throws IOException {
    String home = System.getenv("SPARK_HOME");
    assertNotNull(home, "run through failsafe (mvn verify): it sets SPARK_HOME");
    String appJar = System.getProperty(SparkSessions.APP_JAR);
    assertNotNull(appJar, "failsafe sets " + SparkSessions.APP_JAR);
    assertTrue(Files.isRegularFile(Path.of(appJar)), "no application jar " + appJar);
    fakeSparkHome(Path.of(home), Path.of(appJar));
  }

  /**
   * Makes {@code home} look like a Spark distribution to the launcher: an empty RELEASE file and
   * jars/ linking every jar of the test class path but the application jar, which executors must
   * get through spark.jars as on a real cluster.
   */
  private static void fakeSparkHome(Path home, Path appJar) throws IOException {
    Path jars = home.resolve("jars");
    Files.createDirectories(jars);
    try (Stream<Path> old = Files.list(jars)) {
      for (Path p : old.toList()) {
        Files.delete(p); // links from an earlier run; the class path may have changed
      }
    }
    // Failsafe runs the tests from a manifest-only jar; the real entries are in this property.
    String cp = System.getProperty("surefire.test.class.path",
        System.getProperty("java.class.path"));
    Path app = appJar.toAbsolutePath().normalize();
    for (String entry : cp.split(File.pathSeparator)) {
      Path p = Path.of(entry).toAbsolutePath().normalize();
      if (entry.endsWith(".jar") && Files.isRegularFile(p) && !p.equals(app)) {
        Path link = jars.resolve(p.getFileName());
        if (!Files.exists(link, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
          Files.createSymbolicLink(link, p);
        }
      }
    }
    Files.write(home.resolve("RELEASE"), new byte[0]);
  }
}
