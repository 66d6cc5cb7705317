package dev.mosaic.spark.gpu;

import static org.bytedeco.cuda.global.cudart.CUDA_ERROR_NOT_READY;
import static org.bytedeco.cuda.global.cudart.CU_EVENT_DISABLE_TIMING;
import static org.bytedeco.cuda.global.cudart.CU_STREAM_NON_BLOCKING;
import static org.bytedeco.cuda.global.cudart.cuEventCreate;
import static org.bytedeco.cuda.global.cudart.cuEventDestroy;
import static org.bytedeco.cuda.global.cudart.cuEventQuery;
import static org.bytedeco.cuda.global.cudart.cuEventRecord;
import static org.bytedeco.cuda.global.cudart.cuMemAllocHost;
import static org.bytedeco.cuda.global.cudart.cuMemFreeHost;
import static org.bytedeco.cuda.global.cudart.cuMemcpyDtoHAsync;
import static org.bytedeco.cuda.global.cudart.cuMemcpyHtoDAsync;
import static org.bytedeco.cuda.global.cudart.cuStreamCreate;
import static org.bytedeco.cuda.global.cudart.cuStreamDestroy;
import static org.bytedeco.cuda.global.cudart.cuStreamWaitEvent;
import static org.bytedeco.cuda.global.nccl.ncclAllGather;
import static org.bytedeco.cuda.global.nccl.ncclAllReduce;
import static org.bytedeco.cuda.global.nccl.ncclCommAbort;
import static org.bytedeco.cuda.global.nccl.ncclCommCount;
import static org.bytedeco.cuda.global.nccl.ncclCommDestroy;
import static org.bytedeco.cuda.global.nccl.ncclCommGetAsyncError;
import static org.bytedeco.cuda.global.nccl.ncclCommInitRank;
import static org.bytedeco.cuda.global.nccl.ncclCommSplit;
import static org.bytedeco.cuda.global.nccl.ncclCommUserRank;
import static org.bytedeco.cuda.global.nccl.ncclFloat32;
import static org.bytedeco.cuda.global.nccl.ncclGetErrorString;
import static org.bytedeco.cuda.global.nccl.ncclGetUniqueId;
import static org.bytedeco.cuda.global.nccl.ncclGroupEnd;
import static org.bytedeco.cuda.global.nccl.ncclGroupStart;
import static org.bytedeco.cuda.global.nccl.ncclInProgress;
import static org.bytedeco.cuda.global.nccl.ncclInt32;
import static org.bytedeco.cuda.global.nccl.ncclMax;
import static org.bytedeco.cuda.global.nccl.ncclRecv;
import static org.bytedeco.cuda.global.nccl.ncclSend;
import static org.bytedeco.cuda.global.nccl.ncclSuccess;
import static org.bytedeco.cuda.global.nccl.ncclSum;

import dev.mosaic.kernels.gpu.CudaContext;
import dev.mosaic.kernels.gpu.DeviceArena;
import dev.mosaic.spark.comm.CommException;
import dev.mosaic.spark.comm.Communicator;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.nccl.ncclComm;
import org.bytedeco.cuda.nccl.ncclConfig_t;
import org.bytedeco.cuda.nccl.ncclUniqueId;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;

/**
 * {@link Communicator} over NCCL, one rank per GPU. Started by {@link NcclRendezvous#connect}
 * (rank 0's unique id shared base64-encoded in one barrier round, then {@code ncclCommInitRank}
 * on every rank).
 *
 * <p>Everything runs on a communication stream of its own, so transfers overlap whatever the
 * compute stream (or the CPU) does. {@link #sendRecv} copies the send data into pinned staging,
 * enqueues copy-in, a grouped {@code ncclSend}/{@code ncclRecv} and copy-out, records an event and
 * returns at once; {@link Transfer#await()} waits for the event (polling, with the configured
 * timeout and NCCL's asynchronous error) and copies the received floats out. Two staging slots
 * alternate (double buffering), as the ring strategy's current/next blocks do.
 * {@link #sendRecvDevice} does the same for data that already lives on the GPU: the comm stream
 * first waits on an event of the compute stream, and the caller's compute stream can wait on the
 * transfer's event without blocking the host.
 *
 * <p>{@link #split} is {@code ncclCommSplit} (a child shares the parent's stream and device
 * memory, and closes with it). {@link #close} waits for outstanding work (bounded by the timeout),
 * destroys the communicator — or aborts it after a failure or timeout, which releases peers
 * blocked in NCCL — and frees streams, events, pinned and device memory, each step in its own
 * {@code finally} so that the first failure is thrown, not swallowed.
 *
 * <p>Links against the bytedeco CUDA presets: reached only through {@link NcclRendezvous}, after
 * {@code Gpu.available()}.
 */
public final class NcclCommunicator implements Communicator {
  private static final AtomicLong IDS = new AtomicLong();

  private final int rank;
  private final int size;
  private final ncclComm comm;
  private final CudaContext ctx;
  private final CUstream_st stream;
  private final DeviceArena arena;
  private final boolean ownsArena;
  private final Duration timeout;
  private final NcclCommunicator parent;
  private final String prefix = "nccl" + IDS.incrementAndGet() + ".";
  private final List<NcclCommunicator> children = new ArrayList<>();
  private final AtomicLong sent = new AtomicLong();
  private final Slot[] slots = {new Slot(0), new Slot(1)};
  private final Pinned scratch = new Pinned();
  private int nextSlot;
  private volatile boolean failed;
  private boolean closed;

  /** A fresh NCCL unique id (rank 0 makes it before the barrier round). */
  static byte[] uniqueId() {
    ncclUniqueId id = new ncclUniqueId();
    checkNccl(ncclGetUniqueId(id), "ncclGetUniqueId");
    byte[] b = new byte[NcclIds.BYTES];
    for (int i = 0; i < b.length; i++) {
      b[i] = id.internal(i);
    }
    return b;
  }

  /** Joins the communicator on visible device {@code ordinal}; blocks until every rank has. */
  static NcclCommunicator start(int rank, int size, int ordinal, byte[] id, DeviceArena arena,
      Duration timeout) {
    CudaContext ctx = CudaContext.primary(ordinal);
    CUstream_st stream = new CUstream_st();
    DeviceArena own = null;
    try {
      CudaContext.check(cuStreamCreate(stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
      if (arena == null) {
        own = new DeviceArena(ctx.allocator(), "NCCL rank " + rank + " on GPU " + ordinal);
      }
      ncclUniqueId uid = new ncclUniqueId();
      for (int i = 0; i < id.length; i++) {
        uid.internal(i, id[i]);
      }
      ncclComm comm = new ncclComm();
      String what = "ncclCommInitRank(rank " + rank + " of " + size + ", GPU " + ordinal + ")";
      // Blocks until every rank has joined, with no timeout of its own: bound it.
      int rc = BoundedCall.run(() -> {
        ctx.makeCurrent(); // the helper thread needs the device current too
        return ncclCommInitRank(comm, size, uid, rank);
      }, timeout, what, "a rank did not join (see the other tasks' errors) or the nodes cannot"
          + " reach each other (check NCCL_SOCKET_IFNAME; NCCL_DEBUG=INFO shows NCCL's view)");
      checkNccl(rc, what);
      return new NcclCommunicator(rank, size, comm, ctx, stream, arena != null ? arena : own,
          arena == null, timeout, null);
    } catch (BoundedCall.TimedOut e) {
      // The abandoned init thread still uses the context and may still write the comm: leave
      // them to it (released with the process) rather than pull the device from under NCCL.
      throw e;
    } catch (RuntimeException | Error e) {
      try {
        if (own != null) {
          own.close();
        }
        if (!stream.isNull()) {
          cuStreamDestroy(stream);
        }
      } finally {
        ctx.close();
      }
      throw e;
    }
  }

  private NcclCommunicator(int rank, int size, ncclComm comm, CudaContext ctx, CUstream_st stream,
      DeviceArena arena, boolean ownsArena, Duration timeout, NcclCommunicator parent) {
    this.rank = rank;
    this.size = size;
    this.comm = comm;
    this.ctx = ctx;
    this.stream = stream;
    this.arena = arena;
    this.ownsArena = ownsArena;
    this.timeout = timeout;
    this.parent = parent;
  }

  @Override
  public int rank() {
    return rank;
  }

  @Override
  public int size() {
    return size;
  }

  /** The communication stream (for callers that order their own GPU work against it). */
  public CUstream_st stream() {
    return stream;
  }

  @Override
  public synchronized Transfer sendRecv(float[] send, int sendOff, int sendLen, int dst,
      float[] recv, int recvOff, int recvLen, int src) {
    open();
    checkPeer(dst, "dst");
    checkPeer(src, "src");
    java.util.Objects.checkFromIndexSize(sendOff, sendLen, send.length);
    java.util.Objects.checkFromIndexSize(recvOff, recvLen, recv.length);
    if (dst == rank && src == rank) {
      if (sendLen != recvLen) {
        throw new IllegalArgumentException("a local sendRecv moves " + sendLen
            + " floats but expects " + recvLen);
      }
      System.arraycopy(send, sendOff, recv, recvOff, recvLen);
      return () -> { };
    }
    Slot s = slots[nextSlot];
    nextSlot = (nextSlot + 1) % slots.length;
    if (s.pending != null) {
      s.pending.await(); // double buffer: this slot's previous transfer must be out first
    }
    ctx.makeCurrent();
    long sendBytes = 4L * sendLen;
    long recvBytes = 4L * recvLen;
    long sendDev = arena.reserve(prefix + "send" + s.index, sendBytes);
    long recvDev = arena.reserve(prefix + "recv" + s.index, recvBytes);
    s.hostSend.floats(sendBytes).put(send, sendOff, sendLen);
    s.hostRecv.ensure(recvBytes);
    if (sendBytes > 0) {
      CudaContext.check(cuMemcpyHtoDAsync(sendDev, s.hostSend.ptr, sendBytes, stream),
          "cuMemcpyHtoDAsync(send)");
    }
    group(sendDev, sendLen, dst, recvDev, recvLen, src);
    if (recvBytes > 0) {
      CudaContext.check(cuMemcpyDtoHAsync(s.hostRecv.ptr, recvDev, recvBytes, stream),
          "cuMemcpyDtoHAsync(recv)");
    }
    CUevent_st done = record(stream);
    countSent(sendBytes);
    Pending p = new Pending(s, done, recv, recvOff, recvLen,
        "sendRecv to rank " + dst + " / from rank " + src);
    s.pending = p;
    return p;
  }

  /**
   * Device-to-device {@link #sendRecv}: {@code sendCount} floats at device address {@code send}
   * go to {@code dst} once everything enqueued so far on {@code computeStream} is done, and
   * {@code recvCount} floats from {@code src} land at {@code recv}. Returns at once.
   */
  public synchronized DeviceTransfer sendRecvDevice(long send, long sendCount, int dst, long recv,
      long recvCount, int src, CUstream_st computeStream) {
    open();
    checkPeer(dst, "dst");
    checkPeer(src, "src");
    ctx.makeCurrent();
    CUevent_st ready = record(computeStream);
    try {
      CudaContext.check(cuStreamWaitEvent(stream, ready, 0), "cuStreamWaitEvent");
    } finally {
      cuEventDestroy(ready); // destroying a recorded event is safe: the wait still applies
    }
    group(send, sendCount, dst, recv, recvCount, src);
    countSent(4 * sendCount);
    return new DeviceTransfer(record(stream), "device sendRecv to rank " + dst + " / from rank "
        + src);
  }

  /** A pending {@link #sendRecvDevice}. */
  public final class DeviceTransfer implements Transfer {
    private final CUevent_st done;
    private final String what;
    private boolean finished;

    private DeviceTransfer(CUevent_st done, String what) {
      this.done = done;
      this.what = what;
    }

    /** Makes {@code computeStream} wait for the transfer without blocking the host. */
    public void streamWait(CUstream_st computeStream) {
      synchronized (NcclCommunicator.this) {
        if (!finished) {
          ctx.makeCurrent();
          CudaContext.check(cuStreamWaitEvent(computeStream, done, 0), "cuStreamWaitEvent");
        }
      }
    }

    @Override
    public void await() {
      synchronized (NcclCommunicator.this) {
        if (!finished) {
          try {
            waitFor(done, what);
          } finally {
            finished = true;
            cuEventDestroy(done);
          }
        }
      }
    }
  }

  @Override
  public synchronized float[][] allGather(float[] data) {
    open();
    int[] lengths = gatherInts(data.length);
    int max = 0;
    for (int n : lengths) {
      max = Math.max(max, n);
    }
    float[][] out = new float[size][];
    if (max == 0) {
      for (int r = 0; r < size; r++) {
        out[r] = new float[0];
      }
      return out;
    }
    long in = arena.reserve(prefix + "gather.in", 4L * max);
    long all = arena.reserve(prefix + "gather.out", 4L * max * size);
    scratch.ensure(4L * max * size); // never reallocated while a copy from it is in flight
    float[] padded = java.util.Arrays.copyOf(data, max);
    upload(in, padded, max);
    checkNccl(ncclAllGather(dev(in), dev(all), max, ncclFloat32, comm, stream), "ncclAllGather");
    countSent(4L * max * (size - 1));
    FloatBuffer got = download(all, (long) max * size, "allGather");
    for (int r = 0; r < size; r++) {
      out[r] = new float[lengths[r]];
      got.position(r * max);
      got.get(out[r]);
    }
    return out;
  }

  @Override
  public synchronized float[][] allToAll(float[][] send) {
    open();
    if (send.length != size) {
      throw new IllegalArgumentException("allToAll needs " + size + " arrays, got " + send.length);
    }
    int[] mine = new int[size];
    for (int r = 0; r < size; r++) {
      mine[r] = send[r].length;
    }
    int[] counts = gatherInts(mine); // counts[src * size + dst]
    long sendTotal = 0;
    long recvTotal = 0;
    for (int r = 0; r < size; r++) {
      sendTotal += mine[r];
      recvTotal += counts[r * size + rank];
    }
    long sendDev = arena.reserve(prefix + "a2a.send", 4 * sendTotal);
    long recvDev = arena.reserve(prefix + "a2a.recv", 4 * recvTotal);
    scratch.ensure(4 * Math.max(sendTotal, recvTotal));
    FloatBuffer host = scratch.floats(4 * sendTotal);
    for (float[] s : send) {
      host.put(s);
    }
    if (sendTotal > 0) {
      ctx.makeCurrent();
      CudaContext.check(cuMemcpyHtoDAsync(sendDev, scratch.ptr, 4 * sendTotal, stream),
          "cuMemcpyHtoDAsync(allToAll)");
    }
    checkNccl(ncclGroupStart(), "ncclGroupStart");
    try {
      long so = 0;
      long ro = 0;
      for (int r = 0; r < size; r++) {
        int out = mine[r];
        int in = counts[r * size + rank];
        if (out > 0) {
          checkNccl(ncclSend(dev(sendDev + 4 * so), out, ncclFloat32, r, comm, stream), "ncclSend");
        }
        if (in > 0) {
          checkNccl(ncclRecv(dev(recvDev + 4 * ro), in, ncclFloat32, r, comm, stream), "ncclRecv");
        }
        so += out;
        ro += in;
      }
    } finally {
      checkNccl(ncclGroupEnd(), "ncclGroupEnd");
    }
    countSent(4 * (sendTotal - mine[rank]));
    FloatBuffer got = download(recvDev, recvTotal, "allToAll");
    float[][] result = new float[size][];
    for (int r = 0; r < size; r++) {
      result[r] = new float[counts[r * size + rank]];
      got.get(result[r]);
    }
    return result;
  }

  @Override
  public synchronized void allReduce(float[] data, ReduceOp op) {
    open();
    if (data.length == 0) {
      return;
    }
    long buf = arena.reserve(prefix + "reduce", 4L * data.length);
    upload(buf, data, data.length);
    checkNccl(ncclAllReduce(dev(buf), dev(buf), data.length, ncclFloat32,
        op == ReduceOp.SUM ? ncclSum : ncclMax, comm, stream), "ncclAllReduce");
    countSent(4L * data.length);
    download(buf, data.length, "allReduce").get(data);
  }

  @Override
  public synchronized Communicator split(int color, int key) {
    open();
    if (color < 0) {
      throw new IllegalArgumentException("NCCL split colors are >= 0, got " + color);
    }
    ctx.makeCurrent();
    ncclComm child = new ncclComm();
    checkNccl(ncclCommSplit(comm, color, key, child, (ncclConfig_t) null),
        "ncclCommSplit(color " + color + ", key " + key + ")");
    int[] r = new int[1];
    int[] n = new int[1];
    checkNccl(ncclCommUserRank(child, r), "ncclCommUserRank");
    checkNccl(ncclCommCount(child, n), "ncclCommCount");
    NcclCommunicator c = new NcclCommunicator(r[0], n[0], child, ctx, stream, arena, false,
        timeout, this);
    children.add(c);
    return c;
  }

  @Override
  public void barrier() {
    allReduce(new float[] {1f}, ReduceOp.SUM);
  }

  @Override
  public long bytesSent() {
    return sent.get();
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    RuntimeException failure = null;
    for (NcclCommunicator c : children) {
      try {
        c.close();
      } catch (RuntimeException e) {
        failure = add(failure, e);
      }
    }
    try {
      ctx.makeCurrent();
      if (!failed) {
        try {
          waitFor(record(stream), "close: outstanding NCCL work");
        } catch (RuntimeException e) {
          failure = add(failure, e); // waitFor marked us failed: abort below
        }
      }
      if (failed) {
        checkNccl(ncclCommAbort(comm), "ncclCommAbort");
      } else {
        checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
      }
    } catch (RuntimeException e) {
      failure = add(failure, e);
    } finally {
      if (parent == null) {
        failure = release(failure);
      }
    }
    if (failure != null) {
      throw failure;
    }
  }

  /** Frees what the root communicator owns; every step runs even when an earlier one failed. */
  private RuntimeException release(RuntimeException failure) {
    try {
      for (Slot s : slots) {
        s.hostSend.free();
        s.hostRecv.free();
      }
      scratch.free();
    } catch (RuntimeException e) {
      failure = add(failure, e);
    } finally {
      try {
        cuStreamDestroy(stream);
      } catch (RuntimeException e) {
        failure = add(failure, e);
      } finally {
        try {
          if (ownsArena) {
            arena.close();
          }
        } catch (RuntimeException e) {
          failure = add(failure, e);
        } finally {
          try {
            ctx.close();
          } catch (RuntimeException e) {
            failure = add(failure, e);
          }
        }
      }
    }
    return failure;
  }

  private static RuntimeException add(RuntimeException first, RuntimeException e) {
    if (first == null) {
      return e;
    }
    first.addSuppressed(e);
    return first;
  }

  // ---- helpers -----------------------------------------------------------------------------

  private void group(long sendDev, long sendCount, int dst, long recvDev, long recvCount,
      int src) {
    checkNccl(ncclGroupStart(), "ncclGroupStart");
    try {
      if (sendCount > 0) {
        checkNccl(ncclSend(dev(sendDev), sendCount, ncclFloat32, dst, comm, stream), "ncclSend");
      }
      if (recvCount > 0) {
        checkNccl(ncclRecv(dev(recvDev), recvCount, ncclFloat32, src, comm, stream), "ncclRecv");
      }
    } finally {
      checkNccl(ncclGroupEnd(), "ncclGroupEnd");
    }
  }

  /** Every rank's {@code values} (same length on every rank), concatenated in rank order. */
  private int[] gatherInts(int... values) {
    int n = values.length;
    long in = arena.reserve(prefix + "ints.in", 4L * n);
    long all = arena.reserve(prefix + "ints.out", 4L * n * size);
    scratch.ensure(4L * n * size); // never reallocated while a copy from it is in flight
    IntBuffer host = scratch.bytes(4L * n).asIntBuffer();
    host.put(values);
    ctx.makeCurrent();
    CudaContext.check(cuMemcpyHtoDAsync(in, scratch.ptr, 4L * n, stream), "cuMemcpyHtoDAsync");
    checkNccl(ncclAllGather(dev(in), dev(all), n, ncclInt32, comm, stream), "ncclAllGather(ints)");
    CudaContext.check(cuMemcpyDtoHAsync(scratch.ptr, all, 4L * n * size, stream),
        "cuMemcpyDtoHAsync");
    waitFor(record(stream), "allGather of sizes");
    int[] out = new int[n * size];
    scratch.bytes(4L * n * size).asIntBuffer().get(out);
    return out;
  }

  private void upload(long devPtr, float[] data, int n) {
    scratch.floats(4L * n).put(data, 0, n);
    ctx.makeCurrent();
    CudaContext.check(cuMemcpyHtoDAsync(devPtr, scratch.ptr, 4L * n, stream), "cuMemcpyHtoDAsync");
  }

  /** Enqueues a copy of {@code floats} into the scratch buffer, waits, returns a view of it. */
  private FloatBuffer download(long devPtr, long floats, String what) {
    scratch.ensure(4 * floats);
    if (floats > 0) {
      CudaContext.check(cuMemcpyDtoHAsync(scratch.ptr, devPtr, 4 * floats, stream),
          "cuMemcpyDtoHAsync(" + what + ")");
    }
    waitFor(record(stream), what);
    return scratch.floats(4 * floats);
  }

  private CUevent_st record(CUstream_st on) {
    CUevent_st e = new CUevent_st();
    CudaContext.check(cuEventCreate(e, CU_EVENT_DISABLE_TIMING), "cuEventCreate");
    CudaContext.check(cuEventRecord(e, on), "cuEventRecord");
    return e;
  }

  /**
   * Waits for {@code event} (then destroys it), polling so that the timeout and NCCL's
   * asynchronous errors are seen; either one marks the communicator failed (close aborts it).
   */
  private void waitFor(CUevent_st event, String what) {
    long deadline = System.nanoTime() + timeout.toNanos();
    try {
      while (true) {
        int r = cuEventQuery(event);
        if (r == 0) {
          return;
        }
        if (r != CUDA_ERROR_NOT_READY) {
          failed = true;
          throw new CommException("rank " + rank + ": " + what + " failed: "
              + CudaContext.errorName(r));
        }
        int[] async = new int[1];
        ncclCommGetAsyncError(comm, async);
        if (async[0] != ncclSuccess && async[0] != ncclInProgress) {
          failed = true;
          throw new CommException("rank " + rank + ": " + what + " failed in NCCL: "
              + ncclGetErrorString(async[0]).getString());
        }
        if (System.nanoTime() > deadline) {
          failed = true;
          throw new CommException("rank " + rank + ": " + what + " timed out after "
              + timeout.toMillis() + " ms (CommConfig.timeout)");
        }
        LockSupport.parkNanos(20_000);
      }
    } finally {
      cuEventDestroy(event);
    }
  }

  private void countSent(long bytes) {
    for (NcclCommunicator c = this; c != null; c = c.parent) {
      c.sent.addAndGet(bytes);
    }
  }

  private void open() {
    if (closed) {
      throw new CommException("NCCL communicator (rank " + rank + ") is closed");
    }
    if (failed) {
      throw new CommException("NCCL communicator (rank " + rank + ") failed earlier; close it");
    }
  }

  private void checkPeer(int r, String what) {
    if (r < 0 || r >= size) {
      throw new IllegalArgumentException(what + " rank " + r + " outside 0.." + (size - 1));
    }
  }

  static void checkNccl(int result, String what) {
    if (result != ncclSuccess) {
      throw new CommException(what + " failed: " + ncclGetErrorString(result).getString()
          + " (" + result + ")");
    }
  }

  /** A device address as the Pointer NCCL's bindings take. */
  private static Pointer dev(long address) {
    return new DevicePointer(address);
  }

  private static final class DevicePointer extends Pointer {
    DevicePointer(long address) {
      this.address = address;
    }
  }

  /** Page-locked host memory, grown on demand (needed for copies that really are async). */
  private static final class Pinned {
    BytePointer ptr;
    long capacity;

    void ensure(long bytes) {
      if (ptr != null && capacity >= bytes) {
        return;
      }
      free();
      BytePointer p = new BytePointer();
      long n = Math.max(256, bytes);
      CudaContext.check(cuMemAllocHost(p, n), "cuMemAllocHost(" + n + " bytes)");
      p.capacity(n);
      ptr = p;
      capacity = n;
    }

    java.nio.ByteBuffer bytes(long n) {
      ensure(n);
      if (n == 0) {
        return java.nio.ByteBuffer.allocate(0);
      }
      return ptr.position(0).limit(n).asByteBuffer().order(ByteOrder.nativeOrder());
    }

    FloatBuffer floats(long n) {
      return bytes(n).asFloatBuffer();
    }

    void free() {
      if (ptr != null) {
        BytePointer p = ptr;
        ptr = null;
        capacity = 0;
        CudaContext.check(cuMemFreeHost(p), "cuMemFreeHost");
      }
    }
  }

  /** A staging slot of the double buffer. */
  private static final class Slot {
    final int index;
    final Pinned hostSend = new Pinned();
    final Pinned hostRecv = new Pinned();
    Pending pending;

    Slot(int index) {
      this.index = index;
    }
  }

  /** A pending host {@link #sendRecv}. */
  private final class Pending implements Transfer {
    private final Slot slot;
    private final CUevent_st done;
    private final float[] recv;
    private final int recvOff;
    private final int recvLen;
    private final String what;
    private boolean finished;

    Pending(Slot slot, CUevent_st done, float[] recv, int recvOff, int recvLen, String what) {
      this.slot = slot;
      this.done = done;
      this.recv = recv;
      this.recvOff = recvOff;
      this.recvLen = recvLen;
      this.what = what;
    }

    @Override
    public void await() {
      synchronized (NcclCommunicator.this) {
        if (finished) {
          return;
        }
        finished = true;
        if (slot.pending == this) {
          slot.pending = null;
        }
        waitFor(done, what);
        slot.hostRecv.floats(4L * recvLen).get(recv, recvOff, recvLen);
      }
    }
  }
}
