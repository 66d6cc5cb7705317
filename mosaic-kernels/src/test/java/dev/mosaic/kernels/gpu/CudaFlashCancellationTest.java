package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CancelledException;
import dev.mosaic.kernels.Tensor;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * {@link CudaFlashAttention} asks its cancellation before each launch, with a stand-in for the
 * device side (so this runs without a GPU): a cancelled call launches nothing, and once the
 * cancellation says go on, launches resume.
 */
class CudaFlashCancellationTest {

  /** Counts launches instead of running them. */
  private static final class CountingBackend implements FlashBackend {
    int launches;

    @Override
    public void forward(FlashLaunch launch, BlockView q, BlockView k, BlockView v, float qScale,
        AttentionMask mask, BlockView out, float[] lse) {
      launches++;
    }

    @Override
    public void merge(BlockView acc, float[] accLse, BlockView part, float[] partLse) {}

    @Override
    public String describe() {
      return "counting";
    }

    @Override
    public void close() {}
  }

  @Test
  void cancelledCallsLaunchNothing() {
    CountingBackend backend = new CountingBackend();
    AtomicBoolean killed = new AtomicBoolean();
    try (CudaFlashAttention kernel = new CudaFlashAttention(backend, GpuDtype.FP32, null)) {
      kernel.cancelWith(() -> killed.get() ? "task 7 was killed" : null);
      Runnable call = () -> kernel.forward(view(), view(), view(), 0.5f, AttentionMask.NONE,
          view(), new float[10 * 2]);
      call.run();
      assertEquals(1, backend.launches);

      killed.set(true);
      CancelledException e = assertThrows(CancelledException.class, call::run);
      assertEquals("cancelled: task 7 was killed", e.getMessage());
      assertEquals(1, backend.launches);

      killed.set(false);
      call.run();
      assertEquals(2, backend.launches);

      kernel.cancelWith(null); // same as Cancellation.NEVER
      killed.set(true);
      call.run();
      assertEquals(3, backend.launches);
    }
  }

  private static BlockView view() {
    return BlockView.of(Tensor.zeros(10, 2, 8));
  }
}
