package dev.mosaic.spark.gpu;

import dev.mosaic.kernels.AttentionKernel;
import dev.mosaic.kernels.AttentionMask;
import dev.mosaic.kernels.BlockView;
import dev.mosaic.kernels.gpu.DeviceArena;
import dev.mosaic.kernels.gpu.DeviceBlock;
import dev.mosaic.kernels.gpu.DeviceKernels;
import dev.mosaic.kernels.gpu.GpuDtype;
import dev.mosaic.kernels.gpu.HostPacking;
import dev.mosaic.spark.comm.Communicator;
import dev.mosaic.spark.strategy.RingBlocks;
import dev.mosaic.spark.strategy.ShardLayout;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Optional;

/**
 * {@link RingBlocks} in device memory, for an {@link NcclCommunicator} and a CUDA kernel on the
 * same GPU. At open, q and this rank's {@code [K | V]} are packed once into pinned memory as fp32
 * and copied up (two host-to-device copies per ring, whatever its length); for fp16/bf16 storage
 * they land in an fp32 scratch buffer that {@code convert.cu} rounds into the ring's buffers on
 * the device ({@link DeviceKernels#convertFromFloat}), so the host never converts element by
 * element. The accumulator and its LSE are initialised on the device (0 and −∞). Each step the flash kernel
 * writes a partial on the compute stream and {@code lse_merge.cu} folds it into the accumulator
 * there, while NCCL moves the next {@code [K | V]} block between device buffers on the
 * communicator's stream: the transfer waits for an event of the compute stream (the kernels that
 * read the buffer it overwrites) and the compute stream waits for the transfer's event before it
 * reads the block. Only the final output (and the LSE when asked) is copied back. Under
 * grouped-query attention the [K | V] blocks hold the G K/V heads only, so NCCL moves H/G times
 * fewer bytes, and the kernel maps each query head to its K/V head in place.
 *
 * <p>The buffers are named arena reservations of the communicator, reused by the next ring.
 */
public final class DeviceRingBlocks implements RingBlocks {
  private final NcclCommunicator comm;
  private final CudaApi api;
  private final long context;
  private final DeviceKernels kernels;
  private final long stream;
  private final float scale;
  private final AttentionMask mask;
  private final List<ShardLayout.Segment> querySegments;
  private final int batch;
  private final int seq;
  private final int heads;
  /** K/V heads: the blocks that travel carry only these (grouped-query attention). */
  private final int kvHeads;
  private final int headDim;
  private final int elementBytes;
  private final DeviceBlock q;
  private final long[] kv = new long[2];
  private final long acc;
  private final long accLse;
  private final long part;
  private final long partLse;
  private final PinnedBuffer staging;
  private int current;
  private boolean drained;

  /**
   * Device-resident blocks when {@code comm} is NCCL and {@code kernel} has device entry points on
   * the same GPU; empty otherwise (the ring then keeps host arrays).
   */
  public static Optional<RingBlocks.Factory> factory(Communicator comm, AttentionKernel kernel) {
    if (!(comm instanceof NcclCommunicator nccl)
        || !(kernel instanceof DeviceKernels.Source source)) {
      return Optional.empty();
    }
    Optional<DeviceKernels> found = source.deviceKernels();
    if (found.isEmpty() || found.get().device() != nccl.device()) {
      return Optional.empty();
    }
    DeviceKernels kernels = found.get();
    return Optional.of((q, k, v, querySegments, maxRows, scale, mask) ->
        new DeviceRingBlocks(nccl, kernels, q, k, v, querySegments, maxRows, scale, mask));
  }

  DeviceRingBlocks(NcclCommunicator comm, DeviceKernels kernels, BlockView q, BlockView k,
      BlockView v, List<ShardLayout.Segment> querySegments, int maxRows, float scale,
      AttentionMask mask) {
    if (k.heads() < 1 || q.heads() % k.heads() != 0 || v.heads() != k.heads()) {
      throw new IllegalArgumentException("the GPU ring needs K/V head counts equal to each other"
          + " and dividing the query heads (" + q.heads() + "), got k " + k.heads() + ", v "
          + v.heads());
    }
    this.comm = comm;
    this.api = comm.api();
    this.context = comm.context();
    this.kernels = kernels;
    this.stream = kernels.stream();
    this.scale = scale;
    this.mask = mask;
    this.querySegments = querySegments;
    this.batch = q.batch();
    this.seq = q.seq();
    this.heads = q.heads();
    this.kvHeads = k.heads();
    this.headDim = q.headDim();
    GpuDtype dtype = kernels.dtype();
    this.elementBytes = dtype.bytes();
    DeviceArena arena = comm.arena();
    String name = comm.bufferPrefix() + "ring.";
    long rowFloats = (long) heads * headDim;
    long outFloats = batch * seq * rowFloats;
    long lseFloats = (long) batch * seq * heads;
    this.q = DeviceBlock.contiguous(arena.reserve(name + "q", outFloats * elementBytes), batch,
        seq, heads, headDim, elementBytes);
    long kvBytes = blockBytes(maxRows);
    kv[0] = arena.reserve(name + "kv0", kvBytes);
    kv[1] = comm.size() > 1 ? arena.reserve(name + "kv1", kvBytes) : kv[0];
    acc = arena.reserve(name + "acc", 4 * outFloats);
    accLse = arena.reserve(name + "accLse", 4 * lseFloats);
    part = arena.reserve(name + "part", 4 * outFloats);
    partLse = arena.reserve(name + "partLse", 4 * lseFloats);

    // The only uploads of the ring: q and our [K | V], packed as fp32 once.
    long qBytes = HostPacking.packedBytes(q, GpuDtype.FP32);
    long kBytes = HostPacking.packedBytes(k, GpuDtype.FP32);
    staging = new PinnedBuffer(api, context);
    staging.ensure(Math.max(qBytes + 2 * kBytes, 4 * (outFloats + lseFloats)));
    ByteBuffer host = api.hostBytes(staging.address(), qBytes + 2 * kBytes);
    HostPacking.pack(q, GpuDtype.FP32, host.position(0));
    HostPacking.pack(k, GpuDtype.FP32, host.position((int) qBytes));
    HostPacking.pack(v, GpuDtype.FP32, host.position((int) (qBytes + kBytes)));
    // fp32 storage: straight into the ring's buffers; 16-bit: into scratch, rounded from there.
    boolean convert = dtype != GpuDtype.FP32;
    long scratch = convert ? arena.reserve(name + "f32", qBytes + 2 * kBytes) : 0;
    long qTo = convert ? scratch : this.q.address();
    long kvTo = convert ? scratch + qBytes : kv[0];
    api.makeCurrent(context);
    if (qBytes > 0) {
      api.copyHostToDevice(qTo, staging.address(), qBytes, stream);
    }
    if (kBytes > 0) {
      api.copyHostToDevice(kvTo, staging.address() + qBytes, 2 * kBytes, stream);
    }
    if (convert) { // on the compute stream, after the copies, before any kernel reads q or K/V
      kernels.convertFromFloat(qTo, this.q.address(), qBytes / 4);
      kernels.convertFromFloat(kvTo, kv[0], 2 * kBytes / 4);
    }
    api.fillDevice32(acc, 0, outFloats, stream);
    api.fillDevice32(accLse, Float.floatToRawIntBits(Float.NEGATIVE_INFINITY), lseFloats, stream);
  }

  /** Bytes of a packed [K | V] block of {@code rows} rows in the storage dtype. */
  private long blockBytes(int rows) {
    return 2L * batch * rows * kvHeads * headDim * elementBytes;
  }

  @Override
  public Communicator.Transfer pass(int sendRows, int dst, int recvRows, int src) {
    return comm.sendRecvDeviceBytes(kv[current], blockBytes(sendRows), dst, kv[1 - current],
        blockBytes(recvRows), src, stream);
  }

  @Override
  public void attend(List<ShardLayout.Segment> kvSegments) {
    int kvRows = kvSegments.stream().mapToInt(ShardLayout.Segment::length).sum();
    DeviceBlock kAll = DeviceBlock.contiguous(kv[current], batch, kvRows, kvHeads, headDim,
        elementBytes);
    DeviceBlock vAll = DeviceBlock.contiguous(kv[current] + blockBytes(kvRows) / 2, batch,
        kvRows, kvHeads, headDim, elementBytes);
    int qLocal = 0;
    for (ShardLayout.Segment qs : querySegments) {
      int kLocal = 0;
      for (ShardLayout.Segment ks : kvSegments) {
        AttentionMask m = mask.at(qs.start(), ks.start());
        if (qs.length() > 0 && ks.length() > 0
            && m.visibleKeyEnd(0, qs.length(), ks.length()) > 0) {
          DeviceBlock out = DeviceBlock.contiguous(part, batch, qs.length(), heads, headDim, 4);
          kernels.forward(q.rows(qLocal, qs.length()), kAll.rows(kLocal, ks.length()),
              vAll.rows(kLocal, ks.length()), scale, m, out, partLse);
          merge(qLocal, qs.length());
        }
        kLocal += ks.length();
      }
      qLocal += qs.length();
    }
  }

  /**
   * Folds the partial of query rows {@code [from, from + n)} into the accumulator: one merge over
   * all rows when they are the whole shard (the layouts then agree), else one per batch entry.
   */
  private void merge(int from, int n) {
    long rowFloats = (long) heads * headDim;
    if (n == seq || batch == 1) {
      kernels.merge(acc + 4 * from * rowFloats, accLse + 4L * from * heads, part, partLse,
          (long) batch * n * heads, headDim);
      return;
    }
    for (int b = 0; b < batch; b++) {
      long accRow = (long) b * seq + from;
      long partRow = (long) b * n;
      kernels.merge(acc + 4 * accRow * rowFloats, accLse + 4 * accRow * heads,
          part + 4 * partRow * rowFloats, partLse + 4 * partRow * heads, (long) n * heads,
          headDim);
    }
  }

  @Override
  public void arrived(Communicator.Transfer pass) {
    if (pass instanceof DeviceTransfer t) {
      t.streamWait(stream); // kernels reading the block wait for it on the GPU
    }
    pass.await();
    current = 1 - current;
  }

  @Override
  public void finish(BlockView out, float[] lse) {
    long outBytes = 4L * batch * seq * heads * headDim;
    long lseBytes = 4L * batch * seq * heads;
    api.makeCurrent(context);
    if (outBytes > 0) {
      api.copyDeviceToHost(staging.address(), acc, outBytes, stream);
    }
    if (lse != null && lseBytes > 0) {
      api.copyDeviceToHost(staging.address() + outBytes, accLse, lseBytes, stream);
    }
    drained = true;
    comm.drain(stream, "ring attention on the GPU");
    HostPacking.unpack(api.hostBytes(staging.address(), outBytes).asFloatBuffer(), out);
    if (lse != null) {
      api.hostBytes(staging.address() + outBytes, lseBytes).asFloatBuffer()
          .get(lse, 0, Math.toIntExact(lseBytes / 4));
    }
  }

  @Override
  public void close() {
    Cleanup c = new Cleanup();
    if (!drained) {
      drained = true; // copies from the staging buffer may still be in flight
      c.run(() -> comm.drain(stream, "ring attention on the GPU (closing)"));
    }
    c.run(staging::free);
    c.rethrow();
  }
}
