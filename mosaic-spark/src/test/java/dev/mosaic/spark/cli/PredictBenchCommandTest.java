package dev.mosaic.spark.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@code mosaic bench predict} at tiny sizes: it runs, reports both rates and the ratio, agrees. */
class PredictBenchCommandTest {

  @Test
  @Timeout(120)
  void tinyRunReportsTheRatioAndCachedEqualsRecomputed() {
    CliRun.Result r = CliRun.run("bench", "predict", "--train", "64", "--test", "50",
        "--batch", "16", "--features", "3", "--embed", "8", "--heads", "2", "--layers", "2",
        "--calls", "2", "--threads", "1");
    assertEquals(0, r.code(), r.err() + r.out());
    assertTrue(r.out().contains("ratio cached / recomputed: "), r.out());
    assertTrue(r.out().contains("(a) cached: 4 calls scored all 50 test rows"), r.out());
    assertTrue(r.out().contains("(b) recomputed: 2 calls (train rows recomputed each) scored 32"),
        r.out());
    Matcher m = Pattern.compile("max \\|delta logits\\| on the 2 batches both scored: (\\S+)")
        .matcher(r.out());
    assertTrue(m.find(), r.out());
    // Same fp32 operations up to summation order: far below the command's own 1e-4 limit.
    assertTrue(Double.parseDouble(m.group(1)) < 1e-5, r.out());
  }

  @Test
  void modelWithSizeFlagsIsAUsageError() {
    CliRun.Result r = CliRun.run("bench", "predict", "--model", "m.safetensors",
        "--embed", "8");
    assertEquals(2, r.code(), r.err() + r.out());
    assertTrue(r.err().contains("--model sets the model's sizes"), r.err());
  }
}
