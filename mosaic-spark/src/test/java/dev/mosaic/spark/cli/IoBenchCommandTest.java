package dev.mosaic.spark.cli;

import static dev.mosaic.spark.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.cli.CliRun.Result;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code mosaic bench io} runs {@code EmbeddingIoBenchmark} (which checks that every pass saw
 * every row) and prints the load and both directions' rates and ratios; bad flags are one line.
 * A tiny size: this checks the command, not the speed (docs/performance.md has the numbers).
 */
@Timeout(300) // a bound for a loaded machine: ~10 s on an idle one (Spark start included)
class IoBenchCommandTest {

  @Test
  void printsTheLoadAndBothDirectionsRatesAndRatios() {
    Result r = run("bench", "io", "--rows", "3000", "--embed", "8", "--repeats", "1",
        "--master", "local[2]");
    assertEquals(0, r.code(), r.out() + r.err());
    assertTrue(r.out().startsWith("load average "), r.out());
    assertTrue(r.out().contains("embedding I/O, 3000 rows x 8 floats, best of 1,"), r.out());
    for (String dir : new String[] {"in ", "out"}) {
      Matcher m = Pattern.compile(dir + ": boxed +([0-9,]+) rows/s +internal +([0-9,]+) rows/s"
          + " +([0-9.]+)x").matcher(r.out());
      assertTrue(m.find(), dir + " line missing: " + r.out());
      double boxed = Double.parseDouble(m.group(1).replace(",", ""));
      double internal = Double.parseDouble(m.group(2).replace(",", ""));
      assertTrue(boxed > 0 && internal > 0, r.out());
    }
  }

  @Test
  void badFlagsAreOneLineErrors() {
    Result r = run("bench", "io", "--rows", "0");
    assertEquals(2, r.code(), r.out() + r.err());
    assertEquals("mosaic bench: error: --rows must be at least 1, got 0", r.err().strip());
    r = run("bench", "io", "--bogus", "1");
    assertEquals(2, r.code(), r.out() + r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
  }
}
