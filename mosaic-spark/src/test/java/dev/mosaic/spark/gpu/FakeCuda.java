package dev.mosaic.spark.gpu;

import dev.mosaic.kernels.gpu.CudaException;
import dev.mosaic.kernels.gpu.DeviceAllocator;
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
import java.util.concurrent.atomic.LongAdder;

/**
 * A {@link CudaApi} without a GPU, for tests: memory is Java byte buffers at fake addresses (device
 * and pinned host apart, so a copy in the wrong direction or NCCL on host memory is caught), every
 * stream operation runs at once (events are always complete), NCCL ranks are threads of this JVM
 * sharing one fake (send/recv through mailboxes, collectives through a barrier). It counts every
 * call and records each misuse the real driver would punish — an event or stream destroyed twice,
 * pinned memory allocated with no current context, a handle used after it was freed — as a
 * violation (and throws, as the driver would return an error).
 */
final class FakeCuda implements CudaApi {
  private static final long TIMEOUT_S = 60;
  /** Fake NCCL ids, unique across every fake in this JVM (worlds may be shared between fakes). */
  private static final AtomicLong NEXT_NCCL_ID = new AtomicLong();

  private final AtomicLong handles = new AtomicLong(1);
  private final FakeMemory memory = new FakeMemory();
  private final StreamOrder order = new StreamOrder();
  private final Map<String, LongAdder> calls = new ConcurrentHashMap<>();
  private final Map<String, LongAdder> bytes = new ConcurrentHashMap<>();
  private final List<String> violations = java.util.Collections.synchronizedList(new ArrayList<>());
  private final Set<Long> contexts = ConcurrentHashMap.newKeySet();
  private final Set<Long> streams = ConcurrentHashMap.newKeySet();
  private final Set<Long> events = ConcurrentHashMap.newKeySet();
  private final Map<Long, FakeNcclWorld.Rank> comms = new ConcurrentHashMap<>();
  private final Map<Long, Set<Long>> streamsOfComm = new ConcurrentHashMap<>();
  private final Map<String, FakeNcclWorld> worlds = new ConcurrentHashMap<>();
  private final ThreadLocal<Long> current = new ThreadLocal<>();
  private final ThreadLocal<List<Runnable>> group = new ThreadLocal<>();
  private final ThreadLocal<List<Runnable>> recvs = new ThreadLocal<>();

  // ---- what tests read -----------------------------------------------------------------------

  long calls(String name) {
    LongAdder a = calls.get(name);
    return a == null ? 0 : a.sum();
  }

  long bytes(String name) {
    LongAdder a = bytes.get(name);
    return a == null ? 0 : a.sum();
  }

  List<String> violations() {
    synchronized (violations) {
      return List.copyOf(violations);
    }
  }

  int liveEvents() {
    return events.size();
  }

  int liveStreams() {
    return streams.size();
  }

  int liveContexts() {
    return contexts.size();
  }

  long livePinnedBytes() {
    return memory.liveBytes(false);
  }

  long liveDeviceBytes() {
    return memory.liveBytes(true);
  }

  /** The streams NCCL work of {@code comm} was enqueued on. */
  Set<Long> streamsOf(long comm) {
    return streamsOfComm.getOrDefault(comm, Set.of());
  }

  /** Direct access to device memory, for fake kernels (after {@link #launch}). */
  ByteBuffer device(long address, long length) {
    return view(address, length, true, "fake kernel");
  }

  /**
   * A fake kernel on {@code stream} that reads and writes the given device buffers (each named by
   * an address inside it): checks the accesses are ordered after the work they depend on.
   */
  void launch(long stream, String kernel, long[] reads, long[] writes) {
    count("launch");
    live(streams, stream, "stream", kernel);
    long t = order.tick(stream);
    for (long r : reads) {
      touch(r, 1, true, stream, t, false, kernel);
    }
    for (long w : writes) {
      touch(w, 1, true, stream, t, true, kernel);
    }
  }

  /** Records an access for the race detector; throws when it races with an earlier one. */
  private void touch(long address, long length, boolean device, long stream, long tick,
      boolean write, String call) {
    long base = memory.allocationOf(address, Math.max(1, length), device);
    if (base == 0) {
      view(address, length, device, call); // throws the violation
    }
    String race = order.access(base, stream, tick, write,
        a -> (device ? "device" : "pinned") + " buffer 0x" + Long.toHexString(a));
    if (race != null) {
      throw violation(call + ": " + race);
    }
  }

  // ---- bookkeeping ---------------------------------------------------------------------------

  private void count(String name) {
    calls.computeIfAbsent(name, k -> new LongAdder()).increment();
  }

  private RuntimeException violation(String what) {
    violations.add(what);
    return new CudaException(what, 1);
  }

  private void live(Set<Long> set, long handle, String kind, String call) {
    if (!set.contains(handle)) {
      throw violation(call + " on " + kind + " " + handle + " that is not alive");
    }
  }

  private void requireContext(String call) {
    Long c = current.get();
    if (c == null || !contexts.contains(c)) {
      throw violation(call + " with no current CUDA context on thread "
          + Thread.currentThread().getName() + " (CUDA_ERROR_INVALID_CONTEXT)");
    }
  }

  private long allocate(long n, boolean device) {
    return memory.allocate(n, device);
  }

  private void release(long address, boolean device, String call) {
    if (!memory.release(address, device)) {
      throw violation(call + " of 0x" + Long.toHexString(address) + ", which is not allocated as "
          + (device ? "device" : "pinned host") + " memory");
    }
    order.forget(address);
  }

  private ByteBuffer view(long address, long length, boolean device, String call) {
    if (memory.allocationOf(address, length, device) == 0) {
      throw violation(call + ": " + length + " bytes at 0x" + Long.toHexString(address)
          + " are not inside one " + (device ? "device" : "pinned host") + " allocation");
    }
    return memory.view(address, length);
  }

  private void copy(ByteBuffer from, ByteBuffer to) {
    memory.copy(from, to);
  }

  // ---- contexts ------------------------------------------------------------------------------

  @Override
  public long retainContext(int ordinal) {
    count("retainContext");
    long id = handles.getAndIncrement();
    contexts.add(id);
    current.set(id);
    return id;
  }

  @Override
  public void makeCurrent(long context) {
    count("makeCurrent");
    live(contexts, context, "context", "makeCurrent");
    current.set(context);
  }

  @Override
  public void releaseContext(long context) {
    count("releaseContext");
    if (!contexts.remove(context)) {
      throw violation("context " + context + " released twice");
    }
  }

  @Override
  public DeviceAllocator allocator(int ordinal) {
    return new DeviceAllocator() {
      @Override
      public long allocate(long n) {
        count("deviceAlloc");
        return FakeCuda.this.allocate(n, true);
      }

      @Override
      public void free(long address) {
        count("deviceFree");
        release(address, true, "cuMemFree");
      }
    };
  }

  // ---- streams and events --------------------------------------------------------------------

  @Override
  public long createStream() {
    count("createStream");
    requireContext("cuStreamCreate");
    long s = handles.getAndIncrement();
    streams.add(s);
    return s;
  }

  @Override
  public void destroyStream(long stream) {
    count("destroyStream");
    if (!streams.remove(stream)) {
      throw violation("stream " + stream + " destroyed twice (or never created)");
    }
  }

  @Override
  public long createEvent() {
    count("createEvent");
    long e = handles.getAndIncrement();
    events.add(e);
    return e;
  }

  @Override
  public void recordEvent(long event, long stream) {
    count("recordEvent");
    live(events, event, "event", "cuEventRecord");
    live(streams, stream, "stream", "cuEventRecord");
    order.record(event, stream);
  }

  @Override
  public int queryEvent(long event) {
    count("queryEvent");
    live(events, event, "event", "cuEventQuery");
    order.hostWaited(event); // always complete: the host now knows what the event covers
    return 0;
  }

  @Override
  public void destroyEvent(long event) {
    count("destroyEvent");
    if (!events.remove(event)) {
      throw violation("event " + event + " destroyed twice (or never created)");
    }
  }

  @Override
  public void streamWaitEvent(long stream, long event) {
    count("streamWaitEvent");
    live(streams, stream, "stream", "cuStreamWaitEvent");
    live(events, event, "event", "cuStreamWaitEvent");
    order.streamWait(stream, event);
  }

  @Override
  public String errorName(int result) {
    return "FAKE_ERROR (" + result + ")";
  }

  // ---- memory and copies ---------------------------------------------------------------------

  @Override
  public long allocHost(long n) {
    count("allocHost");
    requireContext("cuMemAllocHost");
    return allocate(n, false);
  }

  @Override
  public void freeHost(long address) {
    count("freeHost");
    requireContext("cuMemFreeHost");
    release(address, false, "cuMemFreeHost");
  }

  @Override
  public ByteBuffer hostBytes(long address, long n) {
    // The host may read or write it: every device copy touching it must be known complete.
    touch(address, n, false, StreamOrder.HOST, 0, true, "host access to pinned memory");
    return view(address, n, false, "hostBytes");
  }

  @Override
  public void copyHostToDevice(long device, long host, long n, long stream) {
    count("copyHostToDevice");
    bytes.computeIfAbsent("copyHostToDevice", k -> new LongAdder()).add(n);
    requireContext("cuMemcpyHtoDAsync");
    live(streams, stream, "stream", "cuMemcpyHtoDAsync");
    long t = order.tick(stream);
    touch(host, n, false, stream, t, false, "cuMemcpyHtoDAsync");
    touch(device, n, true, stream, t, true, "cuMemcpyHtoDAsync");
    copy(view(host, n, false, "cuMemcpyHtoDAsync"), view(device, n, true, "cuMemcpyHtoDAsync"));
  }

  @Override
  public void copyDeviceToHost(long host, long device, long n, long stream) {
    count("copyDeviceToHost");
    bytes.computeIfAbsent("copyDeviceToHost", k -> new LongAdder()).add(n);
    requireContext("cuMemcpyDtoHAsync");
    live(streams, stream, "stream", "cuMemcpyDtoHAsync");
    long t = order.tick(stream);
    touch(device, n, true, stream, t, false, "cuMemcpyDtoHAsync");
    touch(host, n, false, stream, t, true, "cuMemcpyDtoHAsync");
    copy(view(device, n, true, "cuMemcpyDtoHAsync"), view(host, n, false, "cuMemcpyDtoHAsync"));
  }

  @Override
  public void fillDevice32(long device, int bits, long count, long stream) {
    count("fillDevice32");
    requireContext("cuMemsetD32Async");
    live(streams, stream, "stream", "cuMemsetD32Async");
    touch(device, 4 * count, true, stream, order.tick(stream), true, "cuMemsetD32Async");
    ByteBuffer d = view(device, 4 * count, true, "cuMemsetD32Async");
    synchronized (this) {
      for (long i = 0; i < count; i++) {
        d.putInt(bits);
      }
    }
  }

  // ---- NCCL ----------------------------------------------------------------------------------

  @Override
  public byte[] ncclUniqueId() {
    // Only uniqueness matters (it names a fake world), so a counter: deterministic, replayable.
    byte[] id = new byte[NcclIds.BYTES];
    java.nio.ByteBuffer.wrap(id).putLong(NEXT_NCCL_ID.incrementAndGet());
    return id;
  }

  @Override
  public long ncclInitRank(int size, byte[] uniqueId, int rank) {
    count("ncclInitRank");
    requireContext("ncclCommInitRank");
    FakeNcclWorld w = worlds.computeIfAbsent(Base64.getEncoder().encodeToString(uniqueId),
        k -> new FakeNcclWorld(size));
    long h = handles.getAndIncrement();
    comms.put(h, new FakeNcclWorld.Rank(w, rank));
    return h;
  }

  private FakeNcclWorld.Rank comm(long handle, String call) {
    FakeNcclWorld.Rank c = comms.get(handle);
    if (c == null) {
      throw violation(call + " on NCCL communicator " + handle + " that is not alive");
    }
    return c;
  }

  private void enqueue(long comm, long stream, String call, Runnable op) {
    enqueue(comm, stream, call, op, false);
  }

  /** Runs {@code op} now, or at ncclGroupEnd (receives after every send of the group). */
  private void enqueue(long comm, long stream, String call, Runnable op, boolean receive) {
    count(call);
    comm(comm, call);
    live(streams, stream, "stream", call);
    streamsOfComm.computeIfAbsent(comm, k -> ConcurrentHashMap.newKeySet()).add(stream);
    List<Runnable> g = group.get();
    if (g != null) {
      g.add(receive ? () -> recvs.get().add(op) : op);
    } else {
      op.run();
    }
  }

  @Override
  public void ncclGroupStart() {
    count("ncclGroupStart");
    if (group.get() != null) {
      throw violation("nested ncclGroupStart (not used by Mosaic)");
    }
    group.set(new ArrayList<>());
  }

  @Override
  public void ncclGroupEnd() {
    count("ncclGroupEnd");
    List<Runnable> g = group.get();
    group.remove();
    if (g == null) {
      throw violation("ncclGroupEnd without ncclGroupStart");
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

  @Override
  public void ncclSend(long buffer, long count, NcclType type, int peer, long comm, long stream) {
    FakeNcclWorld.Rank c = comm(comm, "ncclSend");
    live(streams, stream, "stream", "ncclSend");
    touch(buffer, count * width(type), true, stream, order.tick(stream), false, "ncclSend");
    bytes.computeIfAbsent("ncclSend", k -> new LongAdder()).add(count * width(type));
    enqueue(comm, stream, "ncclSend", () -> {
      ByteBuffer from = view(buffer, count * width(type), true, "ncclSend");
      byte[] b = new byte[from.remaining()];
      from.get(b);
      c.world.box(c.rank, peer).add(b);
    });
  }

  @Override
  public void ncclRecv(long buffer, long count, NcclType type, int peer, long comm, long stream) {
    FakeNcclWorld.Rank c = comm(comm, "ncclRecv");
    live(streams, stream, "stream", "ncclRecv");
    touch(buffer, count * width(type), true, stream, order.tick(stream), true, "ncclRecv");
    enqueue(comm, stream, "ncclRecv", () -> {
      byte[] b;
      try {
        b = c.world.box(peer, c.rank).poll(TIMEOUT_S, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
      if (b == null) {
        throw violation("ncclRecv from rank " + peer + ": nothing arrived");
      }
      if (b.length != count * width(type)) {
        throw violation("ncclRecv expects " + count * width(type) + " bytes, rank " + peer
            + " sent " + b.length);
      }
      copy(ByteBuffer.wrap(b), view(buffer, b.length, true, "ncclRecv"));
    }, true);
  }

  @Override
  public void ncclAllGather(long in, long out, long count, NcclType type, long comm,
      long stream) {
    FakeNcclWorld.Rank c = comm(comm, "ncclAllGather");
    live(streams, stream, "stream", "ncclAllGather");
    long t = order.tick(stream);
    touch(in, count * width(type), true, stream, t, false, "ncclAllGather");
    touch(out, count * width(type), true, stream, t, true, "ncclAllGather");
    enqueue(comm, stream, "ncclAllGather", () -> {
      long n = count * width(type);
      ByteBuffer mine = view(in, n, true, "ncclAllGather");
      byte[] b = new byte[(int) n];
      mine.get(b);
      byte[][] all = c.world.exchange(c.rank, b);
      ByteBuffer to = view(out, n * c.world.size, true, "ncclAllGather");
      synchronized (this) {
        for (byte[] x : all) {
          to.put(x);
        }
      }
    });
  }

  @Override
  public void ncclAllReduce(long in, long out, long count, NcclType type, boolean max, long comm,
      long stream) {
    FakeNcclWorld.Rank c = comm(comm, "ncclAllReduce");
    if (type != NcclType.FLOAT32) {
      throw violation("the fake reduces float32 only");
    }
    live(streams, stream, "stream", "ncclAllReduce");
    long t = order.tick(stream);
    touch(in, 4 * count, true, stream, t, false, "ncclAllReduce");
    touch(out, 4 * count, true, stream, t, true, "ncclAllReduce");
    enqueue(comm, stream, "ncclAllReduce", () -> {
      ByteBuffer mine = view(in, 4 * count, true, "ncclAllReduce");
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
      ByteBuffer to = view(out, 4 * count, true, "ncclAllReduce");
      synchronized (this) {
        to.asFloatBuffer().put(r);
      }
    });
  }

  @Override
  public long ncclSplit(long comm, int color, int key) {
    count("ncclSplit");
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
    long h = handles.getAndIncrement();
    comms.put(h, new FakeNcclWorld.Rank(child, myRank));
    return h;
  }

  @Override
  public int ncclUserRank(long comm) {
    return comm(comm, "ncclCommUserRank").rank;
  }

  @Override
  public int ncclCount(long comm) {
    return comm(comm, "ncclCommCount").world.size;
  }

  @Override
  public String ncclAsyncError(long comm) {
    comm(comm, "ncclCommGetAsyncError");
    return null;
  }

  @Override
  public void ncclDestroy(long comm) {
    count("ncclDestroy");
    if (comms.remove(comm) == null) {
      throw violation("NCCL communicator " + comm + " destroyed twice");
    }
  }

  @Override
  public void ncclAbort(long comm) {
    count("ncclAbort");
    if (comms.remove(comm) == null) {
      throw violation("NCCL communicator " + comm + " aborted after it was freed");
    }
  }
}
