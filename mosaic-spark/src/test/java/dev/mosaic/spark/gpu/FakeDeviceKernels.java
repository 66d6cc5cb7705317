package dev.mosaic.spark.gpu;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.CpuFlashAttention;
import dev.mosaic.kernels.LseMerge;
import dev.mosaic.kernels.gpu.DeviceBlock;
import dev.mosaic.kernels.gpu.DeviceKernels;
import dev.mosaic.kernels.gpu.GpuDtype;
import java.nio.FloatBuffer;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@link DeviceKernels} on {@link FakeCuda}'s memory (fp32): the flash kernel is the CPU kernel
 * run on the floats the device buffers hold, the merge is {@link LseMerge} row by row, so a ring
 * over fake NCCL computes real attention. Counts launches; its host {@code forward} throws, which
 * proves a device-resident caller never takes the host path.
 */
final class FakeDeviceKernels implements AttentionKernel, DeviceKernels, DeviceKernels.Source {
  private final FakeCuda cuda;
  private final int device;
  private final long stream;
  private final GpuDtype dtype;
  private final CpuFlashAttention cpu = new CpuFlashAttention(1);
  final AtomicLong forwards = new AtomicLong();
  final AtomicLong merges = new AtomicLong();
  final AtomicLong conversions = new AtomicLong();

  FakeDeviceKernels(FakeCuda cuda, int device, long stream) {
    this(cuda, device, stream, GpuDtype.FP32);
  }

  /** Inputs stored as {@code dtype} (converted to fp32 on load, as the CUDA kernel does). */
  FakeDeviceKernels(FakeCuda cuda, int device, long stream, GpuDtype dtype) {
    this.cuda = cuda;
    this.device = device;
    this.stream = stream;
    this.dtype = dtype;
  }

  @Override
  public Optional<DeviceKernels> deviceKernels() {
    return Optional.of(this);
  }

  @Override
  public GpuDtype dtype() {
    return dtype;
  }

  @Override
  public int device() {
    return device;
  }

  @Override
  public long stream() {
    return stream;
  }

  /** Reads a strided device block (fp32, fp16 or bf16) into a contiguous fp32 array. */
  private float[] read(DeviceBlock x) {
    int row = x.heads() * x.headDim();
    int eb = x.elementBytes();
    float[] out = new float[x.batch() * x.seq() * row];
    short[] half = new short[row];
    for (int b = 0; b < x.batch(); b++) {
      for (int s = 0; s < x.seq(); s++) {
        long at = x.address() + eb * (b * x.batchStride() + (long) s * x.rowStride());
        int to = (b * x.seq() + s) * row;
        if (eb == 4) {
          cuda.device(at, 4L * row).asFloatBuffer().get(out, to, row);
          continue;
        }
        cuda.device(at, 2L * row).asShortBuffer().get(half);
        for (int i = 0; i < row; i++) {
          out[to + i] = dtype == GpuDtype.FP16 ? GpuDtype.halfToFloat(half[i])
              : GpuDtype.bf16ToFloat(half[i]);
        }
      }
    }
    return out;
  }

  private void write(float[] data, DeviceBlock x) {
    int row = x.heads() * x.headDim();
    for (int b = 0; b < x.batch(); b++) {
      for (int s = 0; s < x.seq(); s++) {
        long at = x.address() + 4 * (b * x.batchStride() + (long) s * x.rowStride());
        cuda.device(at, 4L * row).asFloatBuffer().put(data, (b * x.seq() + s) * row, row);
      }
    }
  }

  private static BlockView view(float[] data, DeviceBlock x) {
    int row = x.heads() * x.headDim();
    return new BlockView(data, 0, x.batch(), x.seq(), x.heads(), x.headDim(), row,
        (long) x.seq() * row);
  }

  @Override
  public void forward(DeviceBlock q, DeviceBlock k, DeviceBlock v, float scale,
      AttentionMask mask, DeviceBlock out, long lse) {
    forwards.incrementAndGet();
    cuda.launch(stream, "flash forward", new long[] {q.address(), k.address(), v.address()},
        new long[] {out.address(), lse});
    float[] o = new float[out.batch() * out.seq() * out.heads() * out.headDim()];
    float[] l = new float[q.batch() * q.seq() * q.heads()];
    cpu.forward(view(read(q), q), view(read(k), k), view(read(v), v), scale, mask, view(o, out),
        l);
    write(o, out);
    cuda.device(lse, 4L * l.length).asFloatBuffer().put(l);
  }

  /** convert.cu: rounds fp32 to the storage dtype with the host's conversion (bit for bit). */
  @Override
  public void convertFromFloat(long src, long dst, long n) {
    if (dtype == GpuDtype.FP32) {
      throw new AssertionError("fp32 storage converts nothing");
    }
    conversions.incrementAndGet();
    cuda.launch(stream, "convert", new long[] {src}, new long[] {dst});
    int count = Math.toIntExact(n);
    float[] x = new float[count];
    cuda.device(src, 4L * count).asFloatBuffer().get(x);
    short[] h = new short[count];
    for (int i = 0; i < count; i++) {
      h[i] = dtype == GpuDtype.FP16 ? GpuDtype.floatToHalf(x[i]) : GpuDtype.floatToBf16(x[i]);
    }
    cuda.device(dst, 2L * count).asShortBuffer().put(h);
  }

  @Override
  public void merge(long acc, long accLse, long part, long partLse, long rows, int headDim) {
    merges.incrementAndGet();
    cuda.launch(stream, "lse merge", new long[] {acc, accLse, part, partLse},
        new long[] {acc, accLse});
    int n = Math.toIntExact(rows);
    FloatBuffer a = cuda.device(acc, 4L * n * headDim).asFloatBuffer();
    FloatBuffer al = cuda.device(accLse, 4L * n).asFloatBuffer();
    float[] o = new float[n * headDim];
    float[] lse = new float[n];
    float[] ob = new float[n * headDim];
    float[] lb = new float[n];
    a.get(o);
    al.get(lse);
    cuda.device(part, 4L * n * headDim).asFloatBuffer().get(ob);
    cuda.device(partLse, 4L * n).asFloatBuffer().get(lb);
    for (int r = 0; r < n; r++) {
      LseMerge.mergeRow(o, r * headDim, lse, r, ob, r * headDim, lb[r], headDim);
    }
    a.clear();
    a.put(o);
    al.clear();
    al.put(lse);
  }

  @Override
  public void forward(BlockView q, BlockView k, BlockView v, float scale, AttentionMask mask,
      BlockView out, float[] lse) {
    throw new AssertionError("the device-resident ring called the host kernel");
  }

  @Override
  public String name() {
    return "fake-device-kernels";
  }
}
