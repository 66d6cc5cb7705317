package dev.mosaic.kernels.gpu;

import static org.bytedeco.cuda.global.cudart.cuEventCreate;
import static org.bytedeco.cuda.global.cudart.cuEventDestroy;
import static org.bytedeco.cuda.global.cudart.cuEventElapsedTime;
import static org.bytedeco.cuda.global.cudart.cuEventRecord;
import static org.bytedeco.cuda.global.cudart.cuFuncSetAttribute;
import static org.bytedeco.cuda.global.cudart.cuLaunchKernel;
import static org.bytedeco.cuda.global.cudart.cuMemcpyDtoHAsync;
import static org.bytedeco.cuda.global.cudart.cuMemcpyHtoDAsync;
import static org.bytedeco.cuda.global.cudart.cuModuleGetFunction;
import static org.bytedeco.cuda.global.cudart.cuModuleLoadData;
import static org.bytedeco.cuda.global.cudart.cuModuleUnload;
import static org.bytedeco.cuda.global.cudart.cuStreamCreate;
import static org.bytedeco.cuda.global.cudart.cuStreamDestroy;
import static org.bytedeco.cuda.global.cudart.cuStreamSynchronize;

import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.cudart.CUfunc_st;
import org.bytedeco.cuda.cudart.CUmod_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.javacpp.PointerScope;

/**
 * Runs flash_forward.cu (or flash_forward_tc.cu), lse_merge.cu and convert.cu through the driver
 * API on one device: modules from the jar's fatbin (or NVRTC), inputs packed on the host as fp32,
 * copied into named arena buffers that are reused across calls and, for fp16/bf16 storage, rounded
 * there by convert.cu (the host never converts element by element); one stream, synchronous from
 * the caller's view.
 * Calls are serialised ({@code synchronized}); each makes the context current on its thread.
 */
final class CudaFlashBackend implements FlashBackend {
  /** Shared memory a block may use without opting in. */
  private static final int DEFAULT_SHARED_LIMIT = 48 * 1024;

  private final CudaContext ctx;
  private final GpuDtype dtype;
  private final DeviceArena arena;
  private final CUstream_st stream = new CUstream_st();
  private final List<CUmod_st> modules = new ArrayList<>();
  private final CUmod_st flashModule;
  private final CUmod_st mergeModule;
  private final CUmod_st convertModule;
  /** flash_forward_tc, loaded at the first fp16/bf16 call that selects it; null until then. */
  private CUmod_st tensorCoreModule;
  /** Where the tensor-core module came from, or why it is not used. */
  private String tensorCoreOrigin = "tensor-core module not loaded yet";
  private boolean tensorCoreFailed;
  /** Recorded around each forward launch: the kernel's own time, without the copies. */
  private final CUevent_st kernelStart = new CUevent_st();
  private final CUevent_st kernelEnd = new CUevent_st();
  private volatile double lastKernelMillis = Double.NaN;
  private volatile String lastKernel = "";
  private final Map<String, CUfunc_st> functions = new HashMap<>();
  private final Map<String, Integer> sharedOptIn = new HashMap<>();
  private final Map<String, BytePointer> staging = new HashMap<>();
  private final String origin;
  private final String deviceName;
  private final int maxShared;
  private boolean closed;

  CudaFlashBackend(int device, GpuDtype dtype, DeviceArena arena) {
    this.dtype = dtype;
    this.arena = arena;
    this.ctx = CudaContext.primary(device);
    try {
      Gpu.Device info = Gpu.report().devices().get(device);
      this.deviceName = info.name();
      this.maxShared = info.maxSharedPerBlock();
      CudaContext.check(cuStreamCreate(stream, cudart.CU_STREAM_NON_BLOCKING), "cuStreamCreate");
      CudaContext.check(cuEventCreate(kernelStart, cudart.CU_EVENT_DEFAULT), "cuEventCreate");
      CudaContext.check(cuEventCreate(kernelEnd, cudart.CU_EVENT_DEFAULT), "cuEventCreate");
      StringBuilder from = new StringBuilder();
      this.flashModule = load(KernelBinaries.FLASH_FORWARD, from);
      this.mergeModule = load(KernelBinaries.LSE_MERGE, from);
      this.convertModule = load(KernelBinaries.CONVERT, from);
      this.origin = from.toString();
    } catch (RuntimeException | Error e) {
      close();
      throw e;
    }
  }

  /** Loads a module from the fatbin when it has code for this GPU, else through NVRTC. */
  private CUmod_st load(String module, StringBuilder from) {
    int cc = ctx.computeCapability();
    Optional<byte[]> fatbin = KernelBinaries.fatbin(module);
    String why;
    if (fatbin.isPresent()) {
      FatbinInfo info = FatbinInfo.parse(fatbin.get());
      if (info.runsOn(cc)) {
        CUmod_st m = new CUmod_st();
        int r;
        try (BytePointer image = new BytePointer(fatbin.get())) {
          r = cuModuleLoadData(m, image);
        }
        if (r == 0) {
          modules.add(m);
          from.append(from.length() == 0 ? "" : "; ").append(module).append(" from fatbin (")
              .append(info.describe()).append(')');
          return m;
        }
        why = "cuModuleLoadData failed with " + CudaContext.errorName(r);
      } else {
        why = "the fatbin has no code for sm_" + cc + " (" + info.describe() + ")";
      }
    } else {
      why = "the jar has no fatbin";
    }
    byte[] cubin = Nvrtc.compile(KernelBinaries.source(module), module + ".cu", cc);
    CUmod_st m = new CUmod_st();
    try (BytePointer image = new BytePointer(cubin)) {
      CudaContext.check(cuModuleLoadData(m, image), "cuModuleLoadData(" + module + ", NVRTC)");
    }
    modules.add(m);
    from.append(from.length() == 0 ? "" : "; ").append(module).append(" from NVRTC sm_")
        .append(cc).append(" (").append(why).append(')');
    return m;
  }

  /**
   * The tensor-core module, loaded once; null (and the fp32 kernel from then on) when it cannot
   * load here, with the reason kept for {@link #describe()}.
   */
  private CUmod_st tensorCoreModule() {
    if (tensorCoreModule == null && !tensorCoreFailed) {
      StringBuilder from = new StringBuilder();
      try {
        tensorCoreModule = load(KernelBinaries.FLASH_FORWARD_TC, from);
        tensorCoreOrigin = from.toString();
      } catch (RuntimeException e) {
        tensorCoreFailed = true;
        tensorCoreOrigin = "tensor-core module unavailable, fp32 FMA kernel instead: "
            + e.getMessage();
      }
    }
    return tensorCoreModule;
  }

  private CUfunc_st function(CUmod_st module, String name, int sharedBytes) {
    CUfunc_st f = functions.get(name);
    if (f == null) {
      f = new CUfunc_st();
      CudaContext.check(cuModuleGetFunction(f, module, name), "cuModuleGetFunction(" + name + ")");
      functions.put(name, f);
    }
    if (sharedBytes > DEFAULT_SHARED_LIMIT && sharedOptIn.getOrDefault(name, 0) < sharedBytes) {
      if (sharedBytes > maxShared) {
        throw new IllegalArgumentException(name + " needs " + sharedBytes + " bytes of shared"
            + " memory per block; " + deviceName + " allows " + maxShared);
      }
      CudaContext.check(cuFuncSetAttribute(f,
          cudart.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, sharedBytes),
          "cuFuncSetAttribute(" + name + ", max dynamic shared " + sharedBytes + ")");
      sharedOptIn.put(name, sharedBytes);
    }
    return f;
  }

  @Override
  public synchronized void forward(FlashLaunch launch, BlockView q, BlockView k, BlockView v,
      float qScale, AttentionMask mask, BlockView out, float[] lse) {
    ctx.makeCurrent();
    long qd = upload("q", q, dtype);
    long kd = upload("k", k, dtype);
    long vd = upload("v", v, dtype);
    int h = launch.heads();
    int d = launch.headDim();
    long rowFloats = (long) h * d;
    long outFloats = (long) launch.batch() * launch.seqQ() * rowFloats;
    long lseFloats = (long) launch.batch() * launch.seqQ() * h;
    long od = arena.reserve("out", outFloats * Float.BYTES);
    long ld = arena.reserve("lse", lseFloats * Float.BYTES);
    CUmod_st tc = choose(d).tensorCores() ? tensorCoreModule() : null;
    CudaContext.check(cuEventRecord(kernelStart, stream), "cuEventRecord");
    if (tc != null) {
      TensorCoreLaunch t = TensorCoreLaunch.of(launch);
      int smem = t.sharedBytes();
      CUfunc_st f = function(tc, t.kernelName(), smem);
      launch(f, t.kernelName(), t.gridX(), h, launch.batch(), TensorCoreLaunch.THREADS, smem,
          t.arguments(qd, kd, vd, od, ld, qScale, mask));
      lastKernel = t.kernelName();
    } else {
      int smem = launch.sharedBytes();
      CUfunc_st f = function(flashModule, launch.kernelName(), smem);
      launch(f, launch.kernelName(), launch.gridX(), h, launch.batch(), FlashLaunch.THREADS, smem,
          launch.arguments(qd, kd, vd, od, ld, qScale, mask));
      lastKernel = launch.kernelName();
    }
    CudaContext.check(cuEventRecord(kernelEnd, stream), "cuEventRecord");
    HostPacking.unpack(download("out", od, outFloats), out);
    download("lse", ld, lseFloats).get(lse, 0, Math.toIntExact(lseFloats));
    float[] ms = new float[1];
    try (FloatPointer elapsed = new FloatPointer(1)) {
      CudaContext.check(cuEventElapsedTime(elapsed, kernelStart, kernelEnd),
          "cuEventElapsedTime");
      elapsed.get(ms);
    }
    lastKernelMillis = ms[0];
  }

  @Override
  public double lastKernelMillis() {
    return lastKernelMillis;
  }

  @Override
  public String lastKernel() {
    return lastKernel;
  }

  /** The tensor-core kernel's choice for this backend's dtype at {@code headDim}. */
  private KernelSelection.Choice choose(int headDim) {
    return KernelSelection.choose(dtype, headDim, ctx.computeCapability(), maxShared,
        KernelSelection.enabledByProperty());
  }

  @Override
  public synchronized boolean hasVarlen(GpuDtype type, int headDim) {
    if (type != dtype) {
      return false;
    }
    if (dtype == GpuDtype.FP32) {
      return true;
    }
    ctx.makeCurrent();
    return choose(headDim).tensorCores() && tensorCoreModule() != null;
  }

  @Override
  public synchronized void forwardVarlen(FlashLaunch launch, BlockView q, BlockView k,
      BlockView v, dev.mosaic.kernels.VarlenSequences seqs, float qScale, AttentionMask mask,
      BlockView out, float[] lse) {
    ctx.makeCurrent();
    long qd = upload("q", q, dtype);
    long kd = upload("k", k, dtype);
    long vd = upload("v", v, dtype);
    long cq = uploadInts("cuQ", seqs.cuSeqlensQ());
    long ck = uploadInts("cuK", seqs.cuSeqlensK());
    long vk = uploadInts("validKeys",
        seqs.validKeys() == null ? new int[1] : seqs.validKeys());
    int h = launch.heads();
    long outFloats = (long) launch.batch() * launch.seqQ() * h * launch.headDim();
    long lseFloats = (long) launch.batch() * launch.seqQ() * h;
    long od = arena.reserve("out", outFloats * Float.BYTES);
    long ld = arena.reserve("lse", lseFloats * Float.BYTES);
    if (dtype == GpuDtype.FP32) {
      int smem = launch.sharedBytes();
      String name = launch.varlenKernelName();
      launch(function(flashModule, name, smem), name, FlashLaunch.varlenGridX(seqs), h,
          launch.varlenGridZ(seqs), FlashLaunch.THREADS, smem,
          launch.varlenArguments(qd, kd, vd, od, ld, cq, ck, vk, seqs, qScale, mask));
      lastKernel = name;
    } else { // hasVarlen said the tensor-core module is loaded and fits
      TensorCoreLaunch t = TensorCoreLaunch.of(launch);
      int smem = t.sharedBytes();
      String name = t.varlenKernelName();
      launch(function(tensorCoreModule(), name, smem), name, FlashLaunch.varlenGridX(seqs), h,
          t.varlenGridZ(seqs), TensorCoreLaunch.THREADS, smem,
          t.varlenArguments(qd, kd, vd, od, ld, cq, ck, vk, seqs, qScale, mask));
      lastKernel = name;
    }
    HostPacking.unpack(download("out", od, outFloats), out);
    download("lse", ld, lseFloats).get(lse, 0, Math.toIntExact(lseFloats));
  }

  private long uploadInts(String name, int[] values) {
    long bytes = (long) values.length * Integer.BYTES;
    host(name, bytes).asIntBuffer().put(values);
    long dev = arena.reserve(name, bytes);
    CudaContext.check(cuMemcpyHtoDAsync(dev, staging.get(name), bytes, stream),
        "cuMemcpyHtoDAsync(" + name + ")");
    return dev;
  }

  @Override
  public synchronized void merge(BlockView acc, float[] accLse, BlockView part, float[] partLse) {
    ctx.makeCurrent();
    int rows = Math.toIntExact((long) acc.batch() * acc.seq() * acc.heads());
    int d = acc.headDim();
    long ad = upload("merge.acc", acc, GpuDtype.FP32);
    long pd = upload("merge.part", part, GpuDtype.FP32);
    long ald = uploadArray("merge.accLse", accLse, rows);
    long pld = uploadArray("merge.partLse", partLse, rows);
    CUfunc_st f = function(mergeModule, FlashLaunch.MERGE_KERNEL, 0);
    launch(f, FlashLaunch.MERGE_KERNEL, Math.toIntExact(FlashLaunch.mergeBlocks(rows)), 1, 1,
        FlashLaunch.MERGE_THREADS, 0, FlashLaunch.mergeArguments(ad, ald, pd, pld, rows, d));
    HostPacking.unpack(download("merge.acc", ad, (long) rows * d), acc);
    download("merge.accLse", ald, rows).get(accLse, 0, rows);
  }

  /**
   * Packs a view as contiguous fp32 (batch, seq, heads, headDim) and copies it over; for a 16-bit
   * {@code type} into a scratch buffer that convert.cu rounds into the buffer returned.
   */
  private long upload(String name, BlockView x, GpuDtype type) {
    String f32 = type == GpuDtype.FP32 ? name : name + ".f32";
    long bytes = HostPacking.packedBytes(x, GpuDtype.FP32);
    HostPacking.pack(x, GpuDtype.FP32, host(f32, bytes));
    long dev = arena.reserve(f32, bytes);
    if (bytes > 0) {
      CudaContext.check(cuMemcpyHtoDAsync(dev, staging.get(f32), bytes, stream),
          "cuMemcpyHtoDAsync(" + f32 + ", " + bytes + " bytes)");
    }
    if (type == GpuDtype.FP32) {
      return dev;
    }
    long n = bytes / Float.BYTES;
    long converted = arena.reserve(name, n * type.bytes());
    convertDevice(dev, converted, n, type);
    return converted;
  }

  /** Launches {@code f} on the stream with {@code args} marshalled as the kernel expects. */
  private void launch(CUfunc_st f, String name, int gridX, int gridY, int gridZ, int threads,
      int sharedBytes, List<KernelArg> args) {
    try (PointerScope scope = new PointerScope()) {
      Pointer[] values = new Pointer[args.size()];
      for (int i = 0; i < values.length; i++) {
        KernelArg a = args.get(i);
        switch (a.type()) {
          case PTR:
          case I64:
            values[i] = new LongPointer(new long[] {a.bits()});
            break;
          case I32:
            values[i] = new IntPointer(new int[] {a.asInt()});
            break;
          default:
            values[i] = new FloatPointer(new float[] {a.asFloat()});
            break;
        }
      }
      CudaContext.check(cuLaunchKernel(f, gridX, gridY, gridZ, threads, 1, 1, sharedBytes, stream,
          new PointerPointer<>(values), (PointerPointer<?>) null), "cuLaunchKernel(" + name + ")");
    }
  }

  private long uploadArray(String name, float[] values, int n) {
    long bytes = (long) n * Float.BYTES;
    host(name, bytes).asFloatBuffer().put(values, 0, n);
    long dev = arena.reserve(name, bytes);
    if (bytes > 0) {
      CudaContext.check(cuMemcpyHtoDAsync(dev, staging.get(name), bytes, stream),
          "cuMemcpyHtoDAsync(" + name + ")");
    }
    return dev;
  }

  /** Waits for the stream, then copies {@code floats} from the device into host staging. */
  private FloatBuffer download(String name, long dev, long floats) {
    long bytes = floats * Float.BYTES;
    ByteBuffer buf = host(name + ".out", bytes);
    if (bytes > 0) {
      CudaContext.check(cuMemcpyDtoHAsync(staging.get(name + ".out"), dev, bytes, stream),
          "cuMemcpyDtoHAsync(" + name + ")");
    }
    CudaContext.check(cuStreamSynchronize(stream), "cuStreamSynchronize (kernel or copy failed)");
    return buf.asFloatBuffer();
  }

  /** A grow-only host staging buffer, viewed as {@code bytes} bytes in native order. */
  private ByteBuffer host(String name, long bytes) {
    BytePointer p = staging.get(name);
    if (p == null || p.capacity() < bytes) {
      if (p != null) {
        p.close();
      }
      p = new BytePointer(Math.max(16, bytes));
      staging.put(name, p);
    }
    if (bytes == 0) {
      return ByteBuffer.allocate(0);
    }
    return p.position(0).limit(bytes).asByteBuffer().order(ByteOrder.nativeOrder());
  }

  // ---- device entry points (the NCCL ring keeps its blocks on the GPU) ----------------------

  @Override
  public boolean hasDeviceEntryPoints() {
    return true;
  }

  @Override
  public long stream() {
    return stream.address();
  }

  @Override
  public int device() {
    return ctx.ordinal();
  }

  @Override
  public synchronized void forwardDevice(FlashLaunch launch, DeviceBlock q, DeviceBlock k,
      DeviceBlock v, float qScale, AttentionMask mask, DeviceBlock out, long lse) {
    ctx.makeCurrent();
    List<KernelArg> args = DeviceFlashArgs.of(launch, q, k, v, out, lse, qScale, mask);
    CUmod_st tc = choose(launch.headDim()).tensorCores() ? tensorCoreModule() : null;
    if (tc != null) { // the same arguments, then outHalf = 0 (the ring merges fp32 partials)
      TensorCoreLaunch t = TensorCoreLaunch.of(launch);
      List<KernelArg> tcArgs = new ArrayList<>(args);
      tcArgs.add(KernelArg.i32(0));
      int smem = t.sharedBytes();
      launch(function(tc, t.kernelName(), smem), t.kernelName(), t.gridX(), launch.heads(),
          launch.batch(), TensorCoreLaunch.THREADS, smem, tcArgs);
      return;
    }
    int smem = launch.sharedBytes();
    CUfunc_st f = function(flashModule, launch.kernelName(), smem);
    launch(f, launch.kernelName(), launch.gridX(), launch.heads(), launch.batch(),
        FlashLaunch.THREADS, smem, args);
  }

  @Override
  public synchronized void convertDevice(long src, long dst, long n, GpuDtype to) {
    ctx.makeCurrent();
    if (n == 0) {
      return;
    }
    String name = ConvertLaunch.kernelName(to);
    launch(function(convertModule, name, 0), name, ConvertLaunch.blocks(n), 1, 1,
        ConvertLaunch.THREADS, 0, ConvertLaunch.arguments(src, dst, n));
  }

  @Override
  public synchronized void mergeDevice(long acc, long accLse, long part, long partLse, long rows,
      int headDim) {
    ctx.makeCurrent();
    CUfunc_st f = function(mergeModule, FlashLaunch.MERGE_KERNEL, 0);
    launch(f, FlashLaunch.MERGE_KERNEL, Math.toIntExact(FlashLaunch.mergeBlocks(rows)), 1, 1,
        FlashLaunch.MERGE_THREADS, 0,
        FlashLaunch.mergeArguments(acc, accLse, part, partLse, rows, headDim));
  }

  @Override
  public String describe() {
    return "device " + ctx.ordinal() + " " + deviceName + " sm_" + ctx.computeCapability() + ", "
        + origin + "; " + tensorCoreOrigin;
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    RuntimeException failure = null;
    try {
      ctx.makeCurrent();
      for (CUmod_st m : modules) {
        cuModuleUnload(m);
      }
      if (!stream.isNull()) {
        cuStreamDestroy(stream);
      }
      for (CUevent_st e : new CUevent_st[] {kernelStart, kernelEnd}) {
        if (!e.isNull()) {
          cuEventDestroy(e);
        }
      }
    } catch (RuntimeException e) {
      failure = e;
    } finally {
      staging.values().forEach(Pointer::close);
      staging.clear();
      try {
        ctx.close();
      } catch (RuntimeException e) {
        if (failure == null) {
          failure = e;
        } else {
          failure.addSuppressed(e);
        }
      }
    }
    if (failure != null) {
      throw failure;
    }
  }
}
