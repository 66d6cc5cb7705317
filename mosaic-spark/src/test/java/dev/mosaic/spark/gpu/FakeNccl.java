package dev.mosaic.spark.gpu;

import dev.mosaic.spark.gpu.CudaApi.NcclType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The NCCL half of {@link FakeCuda}: communicators are ranks of {@link FakeNcclWorld}s (threads
 * of this JVM sharing one fake), point-to-point through mailboxes (receives of a group run after
 * its sends, as NCCL's grouping allows), collectives and {@code ncclCommSplit} through a barrier.
 * Every buffer access goes through the driver half's checks (device memory only, stream alive,
 * the race detector) and every call is counted there.
 */
final class FakeNccl {
  private static final long TIMEOUT_S = 60;
  /** Fake NCCL ids, unique across every fake in this JVM (worlds may be shared between fakes). */
  private static final AtomicLong NEXT_NCCL_ID = new AtomicLong();

  private final FakeCuda cuda;
  private final Map<Long, FakeNcclWorld.Rank> comms = new ConcurrentHashMap<>();
  private final Map<Long, Set<Long>> streamsOfComm = new ConcurrentHashMap<>();
  private final Map<String, FakeNcclWorld> worlds = new ConcurrentHashMap<>();
  private final ThreadLocal<List<Runnable>> group = new ThreadLocal<>();
  private final ThreadLocal<List<Runnable>> recvs = new ThreadLocal<>();

  FakeNccl(FakeCuda cuda) {
    this.cuda = cuda;
  }

  /** The streams NCCL work of {@code comm} was enqueued on. */
  Set<Long> streamsOf(long comm) {
    return streamsOfComm.getOrDefault(comm, Set.of());
  }

  byte[] uniqueId() {
    // Only uniqueness matters (it names a fake world), so a counter: deterministic, replayable.
    byte[] id = new byte[NcclIds.BYTES];
    java.nio.ByteBuffer.wrap(id).putLong(NEXT_NCCL_ID.incrementAndGet());
    return id;
  }

  long initRank(int size, byte[] uniqueId, int rank) {
    cuda.count("ncclInitRank");
    cuda.requireContext("ncclCommInitRank");
    FakeNcclWorld w = worlds.computeIfAbsent(Base64.getEncoder().encodeToString(uniqueId),
        k -> new FakeNcclWorld(size));
    long h = cuda.newHandle();
    comms.put(h, new FakeNcclWorld.Rank(w, rank));
    return h;
  }

  private FakeNcclWorld.Rank comm(long handle, String call) {
    FakeNcclWorld.Rank c = comms.get(handle);
    if (c == null) {
      throw cuda.violation(call + " on NCCL communicator " + handle + " that is not alive");
    }
    return c;
  }

  private void enqueue(long comm, long stream, String call, Runnable op) {
    enqueue(comm, stream, call, op, false);
  }

  /** Runs {@code op} now, or at ncclGroupEnd (receives after every send of the group). */
  private void enqueue(long comm, long stream, String call, Runnable op, boolean receive) {
    cuda.count(call);
    comm(comm, call);
    cuda.requireStream(stream, call);
    streamsOfComm.computeIfAbsent(comm, k -> ConcurrentHashMap.newKeySet()).add(stream);
    List<Runnable> g = group.get();
    if (g != null) {
      g.add(receive ? () -> recvs.get().add(op) : op);
    } else {
      op.run();
    }
  }

  void groupStart() {
    cuda.count("ncclGroupStart");
    if (group.get() != null) {
      throw cuda.violation("nested ncclGroupStart (not used by Mosaic)");
    }
    group.set(new ArrayList<>());
  }

  void groupEnd() {
    cuda.count("ncclGroupEnd");
    List<Runnable> g = group.get();
    group.remove();
    if (g == null) {
      throw cuda.violation("ncclGroupEnd without ncclGroupStart");
    }
    List<Runnable> late = new ArrayList<>();
    recvs.set(late);
    try {
      g.forEach(Runnable::run); // sends run, receives are collected
    } finally {
      recvs.remove();
    }
    late.forEach(Runnable::run);
  }

  private static int width(NcclType t) {
    return t == NcclType.UINT8 ? 1 : 4;
  }

  void send(long buffer, long count, NcclType type, int peer, long comm, long stream) {
    FakeNcclWorld.Rank c = comm(comm, "ncclSend");
    cuda.requireStream(stream, "ncclSend");
    cuda.touchDevice(buffer, count * width(type), stream, cuda.tick(stream), false, "ncclSend");
    cuda.addBytes("ncclSend", count * width(type));
    enqueue(comm, stream, "ncclSend", () -> {
      ByteBuffer from = cuda.deviceView(buffer, count * width(type), "ncclSend");
      byte[] b = new byte[from.remaining()];
      from.get(b);
      c.world.box(c.rank, peer).add(b);
    });
  }

  void recv(long buffer, long count, NcclType type, int peer, long comm, long stream) {
    FakeNcclWorld.Rank c = comm(comm, "ncclRecv");
    cuda.requireStream(stream, "ncclRecv");
    cuda.touchDevice(buffer, count * width(type), stream, cuda.tick(stream), true, "ncclRecv");
    enqueue(comm, stream, "ncclRecv", () -> {
      byte[] b;
      try {
        b = c.world.box(peer, c.rank).poll(TIMEOUT_S, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
      if (b == null) {
        throw cuda.violation("ncclRecv from rank " + peer + ": nothing arrived");
      }
      if (b.length != count * width(type)) {
        throw cuda.violation("ncclRecv expects " + count * width(type) + " bytes, rank " + peer
            + " sent " + b.length);
      }
      cuda.copy(ByteBuffer.wrap(b), cuda.deviceView(buffer, b.length, "ncclRecv"));
    }, true);
  }

  void allGather(long in, long out, long count, NcclType type, long comm,
      long stream) {
    FakeNcclWorld.Rank c = comm(comm, "ncclAllGather");
    cuda.requireStream(stream, "ncclAllGather");
    long t = cuda.tick(stream);
    cuda.touchDevice(in, count * width(type), stream, t, false, "ncclAllGather");
    cuda.touchDevice(out, count * width(type), stream, t, true, "ncclAllGather");
    enqueue(comm, stream, "ncclAllGather", () -> {
      long n = count * width(type);
      ByteBuffer mine = cuda.deviceView(in, n, "ncclAllGather");
      byte[] b = new byte[(int) n];
      mine.get(b);
      byte[][] all = c.world.exchange(c.rank, b);
      ByteBuffer to = cuda.deviceView(out, n * c.world.size, "ncclAllGather");
      synchronized (cuda) {
        for (byte[] x : all) {
          to.put(x);
        }
      }
    });
  }

  void allReduce(long in, long out, long count, NcclType type, boolean max, long comm,
      long stream) {
    FakeNcclWorld.Rank c = comm(comm, "ncclAllReduce");
    if (type != NcclType.FLOAT32) {
      throw cuda.violation("the fake reduces float32 only");
    }
    cuda.requireStream(stream, "ncclAllReduce");
    long t = cuda.tick(stream);
    cuda.touchDevice(in, 4 * count, stream, t, false, "ncclAllReduce");
    cuda.touchDevice(out, 4 * count, stream, t, true, "ncclAllReduce");
    enqueue(comm, stream, "ncclAllReduce", () -> {
      ByteBuffer mine = cuda.deviceView(in, 4 * count, "ncclAllReduce");
      byte[] b = new byte[(int) (4 * count)];
      mine.get(b);
      byte[][] all = c.world.exchange(c.rank, b);
      float[] r = new float[(int) count];
      java.util.Arrays.fill(r, max ? Float.NEGATIVE_INFINITY : 0f);
      for (byte[] x : all) {
        java.nio.FloatBuffer f = ByteBuffer.wrap(x).order(ByteOrder.nativeOrder()).asFloatBuffer();
        for (int i = 0; i < count; i++) {
          r[i] = max ? Math.max(r[i], f.get(i)) : r[i] + f.get(i);
        }
      }
      ByteBuffer to = cuda.deviceView(out, 4 * count, "ncclAllReduce");
      synchronized (cuda) {
        to.asFloatBuffer().put(r);
      }
    });
  }

  long split(long comm, int color, int key) {
    cuda.count("ncclSplit");
    FakeNcclWorld.Rank c = comm(comm, "ncclCommSplit");
    int split = c.splits++;
    byte[][] all = c.world.exchange(c.rank, ByteBuffer.allocate(8).putInt(color).putInt(key)
        .array());
    List<int[]> members = new ArrayList<>(); // {key, rank}
    for (int r = 0; r < all.length; r++) {
      ByteBuffer b = ByteBuffer.wrap(all[r]);
      if (b.getInt() == color) {
        members.add(new int[] {b.getInt(), r});
      }
    }
    members.sort((a, b) -> a[0] != b[0] ? Integer.compare(a[0], b[0])
        : Integer.compare(a[1], b[1]));
    int myRank = -1;
    for (int i = 0; i < members.size(); i++) {
      if (members.get(i)[1] == c.rank) {
        myRank = i;
      }
    }
    FakeNcclWorld child = c.world.children.computeIfAbsent(split + ":" + color,
        k -> new FakeNcclWorld(members.size()));
    long h = cuda.newHandle();
    comms.put(h, new FakeNcclWorld.Rank(child, myRank));
    return h;
  }

  int userRank(long comm) {
    return comm(comm, "ncclCommUserRank").rank;
  }

  int count(long comm) {
    return comm(comm, "ncclCommCount").world.size;
  }

  String asyncError(long comm) {
    comm(comm, "ncclCommGetAsyncError");
    return null;
  }

  void destroy(long comm) {
    cuda.count("ncclDestroy");
    if (comms.remove(comm) == null) {
      throw cuda.violation("NCCL communicator " + comm + " destroyed twice");
    }
  }

  void abort(long comm) {
    cuda.count("ncclAbort");
    if (comms.remove(comm) == null) {
      throw cuda.violation("NCCL communicator " + comm + " aborted after it was freed");
    }
  }
}
