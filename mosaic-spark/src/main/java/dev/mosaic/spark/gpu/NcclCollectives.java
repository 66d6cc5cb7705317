package dev.mosaic.spark.gpu;

import dev.mosaic.kernels.gpu.DeviceArena;
import dev.mosaic.spark.comm.Communicator.ReduceOp;
import dev.mosaic.spark.comm.Communicator.Transfer;
import dev.mosaic.spark.gpu.CudaApi.NcclType;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.Arrays;
import java.util.Objects;
import java.util.function.LongConsumer;

/**
 * The data paths of one {@link NcclCommunicator}: host floats staged through pinned memory into
 * the communicator's device buffers, the NCCL calls on its communication stream, and the copies
 * back. The communicator checks that it is open and the peers are valid, and holds its lock,
 * before it calls in here.
 *
 * <p>{@link #sendRecv} returns at once: two pinned staging slots alternate (double buffering, as
 * the ring strategy's current/next blocks do) and the transfer's {@code await} copies the
 * received floats out. The collectives ({@link #allGather}, {@link #allToAll},
 * {@link #allReduce}) go through one pinned scratch buffer and wait for their copy-out.
 */
final class NcclCollectives {
  private final CudaApi api;
  private final int rank;
  private final int size;
  private final long comm;
  private final long context;
  private final CommStream stream;
  private final DeviceArena arena;
  private final String prefix;
  private final Object lock;
  private final LongConsumer countSent;
  private final StagingSlot[] slots;
  private final PinnedBuffer scratch;
  private int nextSlot;

  /**
   * @param prefix the communicator's arena buffer prefix
   * @param lock what the communicator synchronizes on (a transfer's await takes it too)
   * @param countSent adds bytes to the communicator's (and its parents') sent count
   */
  NcclCollectives(CudaApi api, int rank, int size, long comm, long context, CommStream stream,
      DeviceArena arena, String prefix, Object lock, LongConsumer countSent) {
    this.api = api;
    this.rank = rank;
    this.size = size;
    this.comm = comm;
    this.context = context;
    this.stream = stream;
    this.arena = arena;
    this.prefix = prefix;
    this.lock = lock;
    this.countSent = countSent;
    this.slots = new StagingSlot[] {new StagingSlot(0, api, context),
        new StagingSlot(1, api, context)};
    this.scratch = new PinnedBuffer(api, context);
  }

  /** See {@link NcclCommunicator#sendRecv}. */
  Transfer sendRecv(float[] send, int sendOff, int sendLen, int dst, float[] recv, int recvOff,
      int recvLen, int src) {
    Objects.checkFromIndexSize(sendOff, sendLen, send.length);
    Objects.checkFromIndexSize(recvOff, recvLen, recv.length);
    if (dst == rank && src == rank) {
      if (sendLen != recvLen) {
        throw new IllegalArgumentException("a local sendRecv moves " + sendLen
            + " floats but expects " + recvLen);
      }
      System.arraycopy(send, sendOff, recv, recvOff, recvLen);
      return () -> { };
    }
    StagingSlot s = slots[nextSlot];
    nextSlot = (nextSlot + 1) % slots.length;
    s.drain(); // double buffer: this slot's previous transfer must be out first
    api.makeCurrent(context);
    long sendBytes = 4L * sendLen;
    long recvBytes = 4L * recvLen;
    long sendDev = arena.reserve(prefix + "send" + s.index, sendBytes);
    long recvDev = arena.reserve(prefix + "recv" + s.index, recvBytes);
    s.send.floats(sendBytes).put(send, sendOff, sendLen);
    s.recv.ensure(recvBytes);
    if (sendBytes > 0) {
      api.copyHostToDevice(sendDev, s.send.address(), sendBytes, stream.handle());
    }
    group(sendDev, sendLen, dst, recvDev, recvLen, src, NcclType.FLOAT32);
    if (recvBytes > 0) {
      api.copyDeviceToHost(s.recv.address(), recvDev, recvBytes, stream.handle());
    }
    long done = stream.record();
    countSent.accept(sendBytes);
    return s.start(lock, stream, done, recv, recvOff, recvLen,
        "sendRecv to rank " + dst + " / from rank " + src);
  }

  /** See {@link NcclCommunicator#sendRecvDeviceBytes}. */
  DeviceTransfer sendRecvDeviceBytes(long send, long sendBytes, int dst, long recv,
      long recvBytes, int src, long computeStream) {
    api.makeCurrent(context);
    long ready = stream.record(computeStream);
    try {
      api.streamWaitEvent(stream.handle(), ready);
    } finally {
      api.destroyEvent(ready); // destroying a recorded event is safe: the wait still applies
    }
    group(send, sendBytes, dst, recv, recvBytes, src, NcclType.UINT8);
    countSent.accept(sendBytes);
    return new DeviceTransfer(lock, api, context, stream, stream.record(),
        "device sendRecv to rank " + dst + " / from rank " + src);
  }

  /** See {@link NcclCommunicator#allGather}. */
  float[][] allGather(float[] data) {
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
    upload(in, Arrays.copyOf(data, max), max);
    api.ncclAllGather(in, all, max, NcclType.FLOAT32, comm, stream.handle());
    countSent.accept(4L * max * (size - 1));
    FloatBuffer got = download(all, (long) max * size, "allGather");
    for (int r = 0; r < size; r++) {
      out[r] = new float[lengths[r]];
      got.position(r * max);
      got.get(out[r]);
    }
    return out;
  }

  /** See {@link NcclCommunicator#allToAll}. */
  float[][] allToAll(float[][] send) {
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
      api.makeCurrent(context);
      api.copyHostToDevice(sendDev, scratch.address(), 4 * sendTotal, stream.handle());
    }
    api.ncclGroupStart();
    try {
      long so = 0;
      long ro = 0;
      for (int r = 0; r < size; r++) {
        int out = mine[r];
        int in = counts[r * size + rank];
        if (out > 0) {
          api.ncclSend(sendDev + 4 * so, out, NcclType.FLOAT32, r, comm, stream.handle());
        }
        if (in > 0) {
          api.ncclRecv(recvDev + 4 * ro, in, NcclType.FLOAT32, r, comm, stream.handle());
        }
        so += out;
        ro += in;
      }
    } finally {
      api.ncclGroupEnd();
    }
    countSent.accept(4 * (sendTotal - mine[rank]));
    FloatBuffer got = download(recvDev, recvTotal, "allToAll");
    float[][] result = new float[size][];
    for (int r = 0; r < size; r++) {
      result[r] = new float[counts[r * size + rank]];
      got.get(result[r]);
    }
    return result;
  }

  /** See {@link NcclCommunicator#allReduce}. */
  void allReduce(float[] data, ReduceOp op) {
    if (data.length == 0) {
      return;
    }
    long buf = arena.reserve(prefix + "reduce", 4L * data.length);
    upload(buf, data, data.length);
    api.ncclAllReduce(buf, buf, data.length, NcclType.FLOAT32, op == ReduceOp.MAX, comm,
        stream.handle());
    countSent.accept(4L * data.length);
    download(buf, data.length, "allReduce").get(data);
  }

  /** Frees the pinned staging and scratch, every buffer even when an earlier free failed. */
  void free(Cleanup c) {
    for (StagingSlot s : slots) {
      c.run(s::free);
    }
    c.run(scratch::free);
  }

  private void group(long sendDev, long sendCount, int dst, long recvDev, long recvCount,
      int src, NcclType type) {
    api.ncclGroupStart();
    try {
      if (sendCount > 0) {
        api.ncclSend(sendDev, sendCount, type, dst, comm, stream.handle());
      }
      if (recvCount > 0) {
        api.ncclRecv(recvDev, recvCount, type, src, comm, stream.handle());
      }
    } finally {
      api.ncclGroupEnd();
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
    api.makeCurrent(context);
    api.copyHostToDevice(in, scratch.address(), 4L * n, stream.handle());
    api.ncclAllGather(in, all, n, NcclType.INT32, comm, stream.handle());
    api.copyDeviceToHost(scratch.address(), all, 4L * n * size, stream.handle());
    stream.drain("allGather of sizes");
    int[] out = new int[n * size];
    scratch.bytes(4L * n * size).asIntBuffer().get(out);
    return out;
  }

  private void upload(long devPtr, float[] data, int n) {
    scratch.floats(4L * n).put(data, 0, n);
    api.makeCurrent(context);
    api.copyHostToDevice(devPtr, scratch.address(), 4L * n, stream.handle());
  }

  /** Enqueues a copy of {@code floats} into the scratch buffer, waits, returns a view of it. */
  private FloatBuffer download(long devPtr, long floats, String what) {
    scratch.ensure(4 * floats);
    if (floats > 0) {
      api.copyDeviceToHost(scratch.address(), devPtr, 4 * floats, stream.handle());
    }
    stream.drain(what);
    return scratch.floats(4 * floats);
  }
}
