package dev.mosaic.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** {@link Tensor#abs} copies (the original keeps its signs) and {@link Tensor#maxAbs}. */
class TensorAbsTest {
  @Test
  void absIsACopyAndMaxAbsTheLargestMagnitude() {
    Tensor t = Tensor.of(new float[] {-3f, 2f, -0f, 1.5f, -7.25f, 4f}, 2, 3);
    Tensor a = t.abs();
    assertArrayEquals(new float[] {3f, 2f, 0f, 1.5f, 7.25f, 4f}, a.data());
    assertArrayEquals(new int[] {2, 3}, a.shape());
    assertEquals(-3f, t.data()[0]);
    assertEquals(7.25f, t.maxAbs());
    assertEquals(0f, Tensor.zeros(0).maxAbs());
  }
}
