package dev.mosaic.spark.gpu;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@link FakeCuda}'s memory: Java buffers at fake addresses, device and pinned host allocations
 * kept apart (with a gap between allocations, so an overrun does not land in the next one).
 */
final class FakeMemory {
  private final AtomicLong addresses = new AtomicLong(0x10_0000);
  private final TreeMap<Long, Region> regions = new TreeMap<>();

  private record Region(ByteBuffer data, boolean device) {}

  synchronized long allocate(long n, boolean device) {
    long a = addresses.getAndAdd(((n + 255) / 256 + 1) * 256);
    regions.put(a, new Region(ByteBuffer.allocate((int) n).order(ByteOrder.nativeOrder()),
        device));
    return a;
  }

  /** Frees an allocation; false when {@code address} is not one of this kind. */
  synchronized boolean release(long address, boolean device) {
    Region r = regions.get(address);
    if (r == null || r.device() != device) {
      return false;
    }
    regions.remove(address);
    return true;
  }

  /** The allocation {@code [address, address + length)} lies in, or 0 when none holds it all. */
  synchronized long allocationOf(long address, long length, boolean device) {
    Map.Entry<Long, Region> e = regions.floorEntry(address);
    if (e == null || address + length > e.getKey() + e.getValue().data().capacity()
        || e.getValue().device() != device) {
      return 0;
    }
    return e.getKey();
  }

  /** A view of {@code length} bytes at {@code address}, which must lie in one allocation. */
  synchronized ByteBuffer view(long address, long length) {
    Map.Entry<Long, Region> e = regions.floorEntry(address);
    ByteBuffer d = e.getValue().data().duplicate().order(ByteOrder.nativeOrder());
    int off = (int) (address - e.getKey());
    d.position(off).limit(off + (int) length);
    return d.slice().order(ByteOrder.nativeOrder());
  }

  synchronized void copy(ByteBuffer from, ByteBuffer to) {
    to.put(from.duplicate());
  }

  synchronized long liveBytes(boolean device) {
    return regions.values().stream().filter(r -> r.device() == device)
        .mapToLong(r -> r.data().capacity()).sum();
  }
}
