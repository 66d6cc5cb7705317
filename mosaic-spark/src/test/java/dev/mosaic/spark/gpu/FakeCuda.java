package dev.mosaic.spark.gpu;

import dev.mosaic.kernels.gpu.CudaException;
import dev.mosaic.kernels.gpu.DeviceAllocator;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * A {@link CudaApi} without a GPU, for tests: memory is Java byte buffers at fake addresses (device
 * and pinned host apart, so a copy in the wrong direction or NCCL on host memory is caught), every
 * stream operation runs at once (events are always complete), NCCL ranks are threads of this JVM
 * sharing one fake ({@link FakeNccl}: send/recv through mailboxes, collectives through a barrier).
 * It counts every call and records each misuse the real driver would punish — an event or stream
 * destroyed twice, pinned memory allocated with no current context, a handle used after it was
 * freed — as a violation (and throws, as the driver would return an error).
 */
final class FakeCuda implements CudaApi {
  private final AtomicLong handles = new AtomicLong(1);
  private final FakeMemory memory = new FakeMemory();
  private final StreamOrder order = new StreamOrder();
  private final Map<String, LongAdder> calls = new ConcurrentHashMap<>();
  private final Map<String, LongAdder> bytes = new ConcurrentHashMap<>();
  private final List<String> violations = java.util.Collections.synchronizedList(new ArrayList<>());
  private final Set<Long> contexts = ConcurrentHashMap.newKeySet();
  private final Set<Long> streams = ConcurrentHashMap.newKeySet();
  private final Set<Long> events = ConcurrentHashMap.newKeySet();
  private final ThreadLocal<Long> current = new ThreadLocal<>();
  private final FakeNccl nccl = new FakeNccl(this);

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
    return nccl.streamsOf(comm);
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

  // ---- bookkeeping (FakeNccl calls these too) -------------------------------------------------

  long newHandle() {
    return handles.getAndIncrement();
  }

  void addBytes(String name, long n) {
    bytes.computeIfAbsent(name, k -> new LongAdder()).add(n);
  }

  void requireStream(long stream, String call) {
    live(streams, stream, "stream", call);
  }

  long tick(long stream) {
    return order.tick(stream);
  }

  /** A device-memory access at {@code tick} of {@code stream}, for the race detector. */
  void touchDevice(long address, long length, long stream, long tick, boolean write,
      String call) {
    touch(address, length, true, stream, tick, write, call);
  }

  ByteBuffer deviceView(long address, long length, String call) {
    return view(address, length, true, call);
  }

  void count(String name) {
    calls.computeIfAbsent(name, k -> new LongAdder()).increment();
  }

  RuntimeException violation(String what) {
    violations.add(what);
    return new CudaException(what, 1);
  }

  private void live(Set<Long> set, long handle, String kind, String call) {
    if (!set.contains(handle)) {
      throw violation(call + " on " + kind + " " + handle + " that is not alive");
    }
  }

  void requireContext(String call) {
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

  void copy(ByteBuffer from, ByteBuffer to) {
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

  // ---- NCCL: FakeNccl ----------------------------------------------------------------------

  @Override
  public byte[] ncclUniqueId() {
    return nccl.uniqueId();
  }

  @Override
  public long ncclInitRank(int size, byte[] uniqueId, int rank) {
    return nccl.initRank(size, uniqueId, rank);
  }

  @Override
  public void ncclGroupStart() {
    nccl.groupStart();
  }

  @Override
  public void ncclGroupEnd() {
    nccl.groupEnd();
  }

  @Override
  public void ncclSend(long buffer, long count, NcclType type, int peer, long comm, long stream) {
    nccl.send(buffer, count, type, peer, comm, stream);
  }

  @Override
  public void ncclRecv(long buffer, long count, NcclType type, int peer, long comm, long stream) {
    nccl.recv(buffer, count, type, peer, comm, stream);
  }

  @Override
  public void ncclAllGather(long in, long out, long count, NcclType type, long comm,
      long stream) {
    nccl.allGather(in, out, count, type, comm, stream);
  }

  @Override
  public void ncclAllReduce(long in, long out, long count, NcclType type, boolean max, long comm,
      long stream) {
    nccl.allReduce(in, out, count, type, max, comm, stream);
  }

  @Override
  public long ncclSplit(long comm, int color, int key) {
    return nccl.split(comm, color, key);
  }

  @Override
  public int ncclUserRank(long comm) {
    return nccl.userRank(comm);
  }

  @Override
  public int ncclCount(long comm) {
    return nccl.count(comm);
  }

  @Override
  public String ncclAsyncError(long comm) {
    return nccl.asyncError(comm);
  }

  @Override
  public void ncclDestroy(long comm) {
    nccl.destroy(comm);
  }

  @Override
  public void ncclAbort(long comm) {
    nccl.abort(comm);
  }
}
