package dev.mosaic.spark.cli;

import static dev.mosaic.spark.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.cli.CliRun.Result;
import dev.mosaic.spark.train.TrainingCheckpoint;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code mosaic pretrain} from the command line: progress, checkpoint, resume, plot, errors. */
class PretrainCommandTest {
  private static final String[] TINY = {"--embed", "8", "--heads", "2", "--layers", "1",
      "--mlp", "16", "--outputs", "4", "--batch", "4", "--min-rows", "12", "--max-rows", "30",
      "--max-features", "3", "--max-classes", "3", "--checkpoint-every", "2", "--master",
      "local[2]"};

  @TempDir
  Path dir;

  private static String[] with(String... first) {
    String[] all = new String[first.length + TINY.length];
    System.arraycopy(first, 0, all, 0, first.length);
    System.arraycopy(TINY, 0, all, first.length, TINY.length);
    return all;
  }

  @Test
  @Timeout(600)
  void trainsStopsResumesWithTheCheckpointsSettingsAndPlots() throws Exception {
    String model = dir.resolve("m.safetensors").toString();
    Result a = run(with("pretrain", "--out", model, "--steps", "4", "--stop-at", "2"));
    assertEquals(0, a.code(), a.out() + a.err());
    assertTrue(a.out().contains("nanoTabPFN E 8, 2 heads, 1 layers"), a.out());
    assertTrue(a.out().matches("(?s).*step 2/4  loss \\d+\\.\\d{4} \\(mean of 2\\).*steps/s  ETA.*"),
        a.out());
    assertEquals(2, TrainingCheckpoint.load(model, new Configuration()).step());

    // Without the tiny flags: the settings come from the checkpoint.
    Result b = run("pretrain", "--out", model, "--resume", "--plot", "--master", "local[2]");
    assertEquals(0, b.code(), b.out() + b.err());
    assertTrue(b.out().contains("nanoTabPFN E 8, 2 heads, 1 layers, MLP 16, 4 outputs; 4 steps"),
        b.out());
    assertTrue(b.out().contains("step 4/4"), b.out());
    assertEquals(4, TrainingCheckpoint.load(model, new Configuration()).step());
    Path png = dir.resolve("m.loss.png");
    assertTrue(Files.size(png) > 1000, "loss curve written: " + png);

    // Changing a setting of the run on resume is refused in one line.
    Result c = run("pretrain", "--out", model, "--resume", "--steps", "6", "--lr", "0.01",
        "--master", "local[2]");
    assertEquals(2, c.code(), c.out() + c.err());
    assertEquals(1, c.err().strip().lines().count(), c.err());
    assertTrue(c.err().contains("mosaic_pretrain_lr: checkpoint 0.001, now 0.01"), c.err());
  }

  @Test
  void badFlagsAreOneLineErrors() {
    Result a = run(with("pretrain", "--out", dir.resolve("x.safetensors").toString(), "--steps",
        "3", "--stop-at", "5"));
    assertEquals(2, a.code(), a.err());
    assertTrue(a.err().contains("--stop-at must be in 1..--steps 3, got 5"), a.err());
    Result b = run(with("pretrain", "--out", dir.resolve("y.safetensors").toString(), "--lr",
        "fast"));
    assertEquals(2, b.code(), b.err());
    assertTrue(b.err().contains("--lr expects a non-negative number, got 'fast'"), b.err());
    Result c = run("pretrain", "--steps", "3");
    assertEquals(2, c.code(), c.err());
    assertTrue(c.err().contains("--out"), c.err());
  }
}
