package dev.mosaic.spark.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.kernels.io.Safetensors;
import dev.mosaic.spark.model.NanoTabPfnCheckpoint;
import dev.mosaic.spark.model.NanoTabPfnInit;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.model.NanoTabPfnShape;
import dev.mosaic.test.TestSeed;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Model + AdamW state through Hadoop's FileSystem: round trip, exact resume, clear refusals. */
class TrainingCheckpointTest {
  private static final NanoTabPfnShape SHAPE = new NanoTabPfnShape(8, 2, 1, 16, 3);
  private static final AdamWSettings SETTINGS = new AdamWSettings(0.9, 0.95, 1e-8, 0.01);
  private final Configuration conf = new Configuration();
  @TempDir Path dir;

  private static Map<String, Tensor> grads(Map<String, Tensor> params, Random rnd) {
    Map<String, Tensor> g = new LinkedHashMap<>();
    params.forEach((k, v) -> g.put(k, Tensor.randn(rnd, 0.1f, v.shape())));
    return g;
  }

  private static Map<String, Tensor> copy(Map<String, Tensor> m) {
    Map<String, Tensor> c = new LinkedHashMap<>();
    m.forEach((k, v) -> c.put(k, v.copy()));
    return c;
  }

  @Test
  void aResumedRunContinuesBitForBit() throws IOException {
    Random rnd = new Random(TestSeed.mix(TestSeed.get(), 17, 1));
    Map<String, Tensor> params = NanoTabPfnInit.seeded(SHAPE, TestSeed.get());
    List<Map<String, Tensor>> g = Stream.generate(() -> grads(params, rnd)).limit(5).toList();
    AdamW opt = new AdamW(SETTINGS);
    for (int t = 0; t < 3; t++) {
      opt.step(params, g.get(t), 1e-3);
    }
    String file = "file://" + dir.resolve("ckpt/model.safetensors");
    TrainingCheckpoint.save(file, params, SHAPE.numHeads(), opt, Map.of("prior_seed", "5"), conf);
    assertTrue(TrainingCheckpoint.exists(file, conf));

    TrainingCheckpoint.Loaded back = TrainingCheckpoint.load(file, conf);
    assertEquals(3, back.step());
    assertEquals("5", back.metadata().get("prior_seed"));
    assertEquals(SETTINGS, back.optimizer().settings());
    Map<String, Tensor> resumed = copy(back.stateDict());
    Map<String, Tensor> straight = copy(params);
    for (int t = 3; t < 5; t++) {
      back.optimizer().step(resumed, g.get(t), 1e-3);
      opt.step(straight, g.get(t), 1e-3);
    }
    for (String n : params.keySet()) {
      assertArrayEquals(straight.get(n).data(), resumed.get(n).data(), n);
    }
    // No temporary files or checksum side files are left beside the checkpoint.
    try (Stream<Path> files = Files.list(dir.resolve("ckpt"))) {
      assertEquals(List.of("model.optim.safetensors", "model.safetensors"),
          files.map(p -> p.getFileName().toString()).sorted().toList());
    }
  }

  @Test
  void theModelFileIsAPlainNanoTabPfnCheckpoint() {
    Map<String, Tensor> params = NanoTabPfnInit.seeded(SHAPE, 3);
    AdamW opt = new AdamW(SETTINGS);
    opt.step(params, grads(params, new Random(TestSeed.get())), 1e-3);
    Path file = dir.resolve("plain.safetensors");
    TrainingCheckpoint.save(file.toString(), params, SHAPE.numHeads(), opt, Map.of(), conf);
    try (NanoTabPfnModel m = NanoTabPfnCheckpoint.load(file, null, 1)) {
      assertEquals(SHAPE, m.shape());
    }
    assertEquals(List.copyOf(SHAPE.tensorShapes().keySet()),
        List.copyOf(Safetensors.read(file).keySet()), "PyTorch's state_dict order");
    // Saving again replaces both files.
    opt.step(params, grads(params, new Random(TestSeed.get() + 1)), 1e-3);
    TrainingCheckpoint.save(file.toString(), params, SHAPE.numHeads(), opt, Map.of(), conf);
    assertEquals(2, TrainingCheckpoint.load(file.toString(), conf).step());
  }

  @Test
  void aTornPairIsRefusedInOneLine() {
    Map<String, Tensor> params = NanoTabPfnInit.seeded(SHAPE, 4);
    AdamW opt = new AdamW(SETTINGS);
    opt.step(params, grads(params, new Random(TestSeed.get())), 1e-3);
    String a = dir.resolve("a.safetensors").toString();
    TrainingCheckpoint.save(a, params, SHAPE.numHeads(), opt, Map.of(), conf);
    opt.step(params, grads(params, new Random(TestSeed.get())), 1e-3);
    String b = dir.resolve("b.safetensors").toString();
    TrainingCheckpoint.save(b, params, SHAPE.numHeads(), opt, Map.of(), conf);
    // a's model with b's optimizer state
    Safetensors.write(Path.of(TrainingCheckpoint.optimizerPath(a)),
        Safetensors.read(Path.of(TrainingCheckpoint.optimizerPath(b))),
        Safetensors.metadata(Path.of(TrainingCheckpoint.optimizerPath(b))));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> TrainingCheckpoint.load(a, conf));
    assertTrue(e.getMessage().contains("at step 1") && e.getMessage().contains("at step 2"),
        e.getMessage());
    assertFalse(e.getMessage().contains("\n"));
    IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
        () -> TrainingCheckpoint.load(dir.resolve("none.safetensors").toString(), conf));
    assertTrue(missing.getMessage().startsWith("no file at "), missing.getMessage());
  }

  @Test
  void optimizerPathSitsBesideTheModel() {
    assertEquals("hdfs://nn/x/m.optim.safetensors",
        TrainingCheckpoint.optimizerPath("hdfs://nn/x/m.safetensors"));
    assertEquals("m.bin.optim.safetensors", TrainingCheckpoint.optimizerPath("m.bin"));
  }
}
