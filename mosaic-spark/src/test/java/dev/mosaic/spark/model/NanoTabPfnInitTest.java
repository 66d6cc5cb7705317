package dev.mosaic.spark.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Seeded weights: PyTorch's shapes and init ranges, reproducible, and a model that runs. */
class NanoTabPfnInitTest {
  private static final NanoTabPfnShape SHAPE = new NanoTabPfnShape(16, 4, 2, 24, 5);

  @Test
  void everyTensorHasItsShapeAndPyTorchsRange() {
    Map<String, Tensor> w = NanoTabPfnInit.seeded(SHAPE, 7);
    assertEquals(SHAPE.tensorShapes().keySet(), w.keySet());
    for (Map.Entry<String, int[]> e : SHAPE.tensorShapes().entrySet()) {
      assertArrayEquals(e.getValue(), w.get(e.getKey()).shape(), e.getKey());
    }
    assertTrue(maxAbs(w.get("decoder.linear2.weight")) <= 1 / Math.sqrt(24));
    assertTrue(maxAbs(w.get("decoder.linear2.weight")) > 0.5 / Math.sqrt(24));
    assertTrue(maxAbs(w.get("feature_encoder.linear_layer.bias")) <= 1.0);
    String att = NanoTabPfnShape.block(1) + NanoTabPfnShape.ROW_ATTENTION;
    assertTrue(maxAbs(w.get(att + "in_proj_weight")) <= Math.sqrt(6.0 / (48 + 16)));
    assertEquals(0.0, maxAbs(w.get(att + "in_proj_bias")));
    assertEquals(0.0, maxAbs(w.get(NanoTabPfnShape.block(0) + "norm2.bias")));
    float[] gamma = w.get(NanoTabPfnShape.block(0) + "norm3.weight").data();
    for (float g : gamma) {
      assertEquals(1f, g);
    }
  }

  @Test
  void sameSeedSameWeightsAndTheModelRuns() {
    Map<String, Tensor> a = NanoTabPfnInit.seeded(SHAPE, 11);
    Map<String, Tensor> b = NanoTabPfnInit.seeded(SHAPE, 11);
    Map<String, Tensor> c = NanoTabPfnInit.seeded(SHAPE, 12);
    String name = NanoTabPfnShape.block(0) + "linear1.weight";
    assertArrayEquals(a.get(name).data(), b.get(name).data());
    assertNotEquals(a.get(name).data()[0], c.get(name).data()[0]);
    float[] x = new float[10 * 3];
    for (int i = 0; i < x.length; i++) {
      x[i] = (i * 37 % 11) - 5;
    }
    float[] y = {0, 1, 2, 0, 1, 2};
    try (NanoTabPfnModel m = NanoTabPfnModel.fromStateDict("seeded", a, 4, null, 1)) {
      Tensor logits = m.logits(Tensor.of(x, 10, 3), y);
      assertArrayEquals(new int[] {4, 5}, logits.shape());
      for (float v : logits.data()) {
        assertTrue(Float.isFinite(v));
      }
    }
  }

  private static double maxAbs(Tensor t) {
    double m = 0;
    for (float v : t.data()) {
      m = Math.max(m, Math.abs(v));
    }
    return m;
  }
}
