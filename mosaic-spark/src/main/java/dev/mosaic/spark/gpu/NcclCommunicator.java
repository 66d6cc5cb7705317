package dev.mosaic.spark.gpu;

import dev.mosaic.kernels.gpu.DeviceArena;
import dev.mosaic.spark.comm.CommException;
import dev.mosaic.spark.comm.Communicator;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@link Communicator} over NCCL, one rank per GPU. Started by {@link NcclRendezvous#connect}
 * (rank 0's unique id shared base64-encoded in one barrier round, then {@code ncclCommInitRank}
 * on every rank). Every CUDA and NCCL call goes through a {@link CudaApi}, so its bookkeeping is
 * tested without a GPU.
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
 * <p>{@link #split} is {@code ncclCommSplit}: a child has a stream and pinned staging of its own
 * (so a hierarchical strategy's inner and outer transfers overlap), shares the parent's context
 * and device memory, and closes with it. {@link #close} waits for outstanding work (bounded by
 * the timeout), destroys the communicator — or aborts it after a failure or timeout, which releases peers
 * blocked in NCCL — and frees streams, events, pinned and device memory, each step in its own
 * {@code finally} so that the first failure is thrown, not swallowed.
 *
 * <p>This class owns the handle: its bootstrap, {@link #split}, the checks every call makes and
 * the teardown. The data paths (staging, copies and NCCL calls) are {@link NcclCollectives}'s.
 */
public final class NcclCommunicator implements Communicator {
  private static final AtomicLong IDS = new AtomicLong();

  private final CudaApi api;
  private final int rank;
  private final int size;
  private final int ordinal;
  private final long comm;
  private final long context;
  private final CommStream stream;
  private final DeviceArena arena;
  private final boolean ownsArena;
  private final Duration timeout;
  private final NcclCommunicator parent;
  private final String prefix = "nccl" + IDS.incrementAndGet() + ".";
  private final List<NcclCommunicator> children = new ArrayList<>();
  private final AtomicLong sent = new AtomicLong();
  private final NcclCollectives collectives;
  private boolean closed;

  /** A fresh NCCL unique id (rank 0 makes it before the barrier round). */
  static byte[] uniqueId() {
    return BytedecoCudaApi.INSTANCE.ncclUniqueId();
  }

  /** Joins the communicator on visible device {@code ordinal}; blocks until every rank has. */
  static NcclCommunicator start(int rank, int size, int ordinal, byte[] id, DeviceArena arena,
      Duration timeout) {
    return start(BytedecoCudaApi.INSTANCE, rank, size, ordinal, id, arena, timeout);
  }

  /** As {@link #start(int, int, int, byte[], DeviceArena, Duration)}, through {@code api}. */
  static NcclCommunicator start(CudaApi api, int rank, int size, int ordinal, byte[] id,
      DeviceArena arena, Duration timeout) {
    long ctx = api.retainContext(ordinal);
    long stream = 0;
    DeviceArena own = null;
    try {
      stream = api.createStream();
      if (arena == null) {
        own = new DeviceArena(api.allocator(ordinal), "NCCL rank " + rank + " on GPU " + ordinal);
      }
      String what = "ncclCommInitRank(rank " + rank + " of " + size + ", GPU " + ordinal + ")";
      // Blocks until every rank has joined, with no timeout of its own: bound it.
      long comm = BoundedCall.run(() -> {
        api.makeCurrent(ctx); // the helper thread needs the device current too
        return api.ncclInitRank(size, id, rank);
      }, timeout, what, "a rank did not join (see the other tasks' errors) or the nodes cannot"
          + " reach each other (check NCCL_SOCKET_IFNAME; NCCL_DEBUG=INFO shows NCCL's view)");
      return new NcclCommunicator(api, rank, size, ordinal, comm, ctx, stream,
          arena != null ? arena : own, arena == null, timeout, null);
    } catch (BoundedCall.TimedOut e) {
      // The abandoned init thread still uses the context and may still write the comm: leave
      // them to it (released with the process) rather than pull the device from under NCCL.
      throw e;
    } catch (RuntimeException | Error e) {
      Cleanup c = new Cleanup();
      if (own != null) {
        c.run(own::close);
      }
      if (stream != 0) {
        long s = stream;
        c.run(() -> api.destroyStream(s));
      }
      c.run(() -> api.releaseContext(ctx));
      throw e;
    }
  }

  private NcclCommunicator(CudaApi api, int rank, int size, int ordinal, long comm, long context,
      long stream, DeviceArena arena, boolean ownsArena, Duration timeout,
      NcclCommunicator parent) {
    this.api = api;
    this.rank = rank;
    this.size = size;
    this.ordinal = ordinal;
    this.comm = comm;
    this.context = context;
    this.stream = new CommStream(api, context, stream, comm, rank, timeout);
    this.arena = arena;
    this.ownsArena = ownsArena;
    this.timeout = timeout;
    this.parent = parent;
    this.collectives = new NcclCollectives(api, rank, size, comm, context, this.stream, arena,
        prefix, this, this::countSent);
  }

  @Override
  public int rank() {
    return rank;
  }

  @Override
  public int size() {
    return size;
  }

  /** The visible CUDA device ordinal this rank runs on. */
  public int device() {
    return ordinal;
  }

  // What the device-resident ring (same package) shares with its communicator.

  CudaApi api() {
    return api;
  }

  long context() {
    return context;
  }

  DeviceArena arena() {
    return arena;
  }

  /** A name prefix for this communicator's arena buffers. */
  String bufferPrefix() {
    return prefix;
  }

  /**
   * Waits for everything enqueued so far on {@code otherStream} (e.g. a compute stream), with
   * this communicator's timeout and NCCL error checks.
   */
  synchronized void drain(long otherStream, String what) {
    open();
    stream.await(stream.record(otherStream), what);
  }

  /** The NCCL communicator handle (for tests). */
  long handle() {
    return comm;
  }

  /** The communication stream (for callers that order their own GPU work against it). */
  public long stream() {
    return stream.handle();
  }

  @Override
  public synchronized Transfer sendRecv(float[] send, int sendOff, int sendLen, int dst,
      float[] recv, int recvOff, int recvLen, int src) {
    open();
    checkPeer(dst, "dst");
    checkPeer(src, "src");
    return collectives.sendRecv(send, sendOff, sendLen, dst, recv, recvOff, recvLen, src);
  }

  /**
   * Device-to-device {@link #sendRecv}: {@code sendCount} floats at device address {@code send}
   * go to {@code dst} once everything enqueued so far on {@code computeStream} is done, and
   * {@code recvCount} floats from {@code src} land at {@code recv}. Returns at once.
   */
  public DeviceTransfer sendRecvDevice(long send, long sendCount, int dst, long recv,
      long recvCount, int src, long computeStream) {
    return sendRecvDeviceBytes(send, 4 * sendCount, dst, recv, 4 * recvCount, src,
        computeStream);
  }

  /** {@link #sendRecvDevice} counted in bytes (for fp16/bf16 blocks). */
  public synchronized DeviceTransfer sendRecvDeviceBytes(long send, long sendBytes, int dst,
      long recv, long recvBytes, int src, long computeStream) {
    open();
    checkPeer(dst, "dst");
    checkPeer(src, "src");
    return collectives.sendRecvDeviceBytes(send, sendBytes, dst, recv, recvBytes, src,
        computeStream);
  }

  @Override
  public synchronized float[][] allGather(float[] data) {
    open();
    return collectives.allGather(data);
  }

  @Override
  public synchronized float[][] allToAll(float[][] send) {
    open();
    return collectives.allToAll(send);
  }

  @Override
  public synchronized void allReduce(float[] data, ReduceOp op) {
    open();
    collectives.allReduce(data, op);
  }

  @Override
  public synchronized Communicator split(int color, int key) {
    open();
    if (color < 0) {
      throw new IllegalArgumentException("NCCL split colors are >= 0, got " + color);
    }
    api.makeCurrent(context);
    long child = api.ncclSplit(comm, color, key);
    long childStream = 0;
    try {
      // A stream of its own: the hierarchical strategies' inner and outer transfers overlap.
      childStream = api.createStream();
      NcclCommunicator c = new NcclCommunicator(api, api.ncclUserRank(child),
          api.ncclCount(child), ordinal, child, context, childStream, arena, false, timeout, this);
      children.add(c);
      return c;
    } catch (RuntimeException | Error e) {
      Cleanup undo = new Cleanup();
      if (childStream != 0) {
        long s = childStream;
        undo.run(() -> api.destroyStream(s));
      }
      undo.run(() -> api.ncclDestroy(child));
      throw e;
    }
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
    Cleanup c = new Cleanup();
    for (NcclCommunicator child : children) {
      c.run(child::close);
    }
    c.run(() -> {
      api.makeCurrent(context);
      if (!stream.failed()) {
        try {
          stream.drain("close: outstanding NCCL work");
        } catch (RuntimeException e) {
          c.add(e); // the wait marked the stream failed: abort below
        }
      }
      if (stream.failed()) {
        api.ncclAbort(comm);
      } else {
        api.ncclDestroy(comm);
      }
    });
    release(c);
    c.rethrow();
  }

  /**
   * Frees what this communicator owns — its pinned staging and its stream; the root also the
   * device memory (when its own) and the context, which children share — every step even when an
   * earlier one failed.
   */
  private void release(Cleanup c) {
    collectives.free(c);
    c.run(() -> api.destroyStream(stream()));
    if (parent == null) {
      if (ownsArena) {
        c.run(arena::close);
      }
      c.run(() -> api.releaseContext(context));
    }
  }

  // ---- helpers -----------------------------------------------------------------------------

  private void countSent(long bytes) {
    for (NcclCommunicator c = this; c != null; c = c.parent) {
      c.sent.addAndGet(bytes);
    }
  }

  /** Checks the communicator is usable and makes its context current on this thread. */
  private void open() {
    if (closed) {
      throw new CommException("NCCL communicator (rank " + rank + ") is closed");
    }
    if (stream.failed()) {
      throw new CommException("NCCL communicator (rank " + rank + ") failed earlier; close it");
    }
    api.makeCurrent(context);
  }

  private void checkPeer(int r, String what) {
    if (r < 0 || r >= size) {
      throw new IllegalArgumentException(what + " rank " + r + " outside 0.." + (size - 1));
    }
  }
}
