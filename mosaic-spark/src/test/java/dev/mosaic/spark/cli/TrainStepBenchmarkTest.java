package dev.mosaic.spark.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** {@code bench train-step} on a tiny shape, Java only (the PyTorch side is not run in tests). */
class TrainStepBenchmarkTest {
  private static final Pattern LOSS = Pattern.compile("loss (\\S+)");

  @Test
  void replicasPerThreadGiveTheSameLossAsOneThread() {
    String one = run("--threads", "1");
    String two = run("--threads", "2");
    assertTrue(one.contains("java    steps/s "), one);
    assertEquals(loss(one), loss(two), one + "\n" + two);
  }

  @Test
  void refusesTrainRowsNotBelowRows() {
    UserError e = assertThrows(UserError.class, () -> TrainStepBenchmark.run(
        new String[] {"--rows", "10", "--train", "10", "--no-pytorch"}, System.out));
    assertTrue(e.getMessage().contains("--train below --rows"), e.getMessage());
  }

  private static String run(String... threads) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
    String[] args = {"--embed", "16", "--heads", "2", "--layers", "1", "--mlp", "32", "--batch",
        "3", "--rows", "20", "--train", "12", "--features", "4", "--classes", "3", "--outputs",
        "3", "--steps", "1", "--no-pytorch", threads[0], threads[1]};
    assertEquals(0, TrainStepBenchmark.run(args, out));
    return bytes.toString(StandardCharsets.UTF_8);
  }

  private static String loss(String out) {
    Matcher m = LOSS.matcher(out);
    assertTrue(m.find(), out);
    return m.group(1);
  }
}
