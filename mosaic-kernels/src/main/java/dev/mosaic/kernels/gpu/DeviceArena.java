package dev.mosaic.kernels.gpu;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Device memory owned by one scope, normally one Spark task: everything allocated here is freed by
 * {@link #close()}, which runs when the task ends, also when it fails (see
 * {@code dev.mosaic.spark.gpu.TaskDeviceMemory}). Close frees in reverse order of allocation, then
 * closes the allocator (its context); it keeps going when one step fails and then throws the first
 * failure with the others suppressed; it is idempotent. Named buffers ({@link #reserve}) grow on demand and are reused across calls, so a
 * kernel called per ring step does not allocate per step. Thread-safe.
 */
public final class DeviceArena implements AutoCloseable {
  private final DeviceAllocator allocator;
  private final String owner;
  /** Live allocations: address → bytes, in allocation order. */
  private final LinkedHashMap<Long, Long> live = new LinkedHashMap<>();
  private final Map<String, long[]> reserved = new HashMap<>(); // name → {address, bytes}
  private long inUse;
  private long peak;
  private boolean closed;

  /** @param owner named in errors, e.g. "task 12 (stage 3, partition 1)" */
  public DeviceArena(DeviceAllocator allocator, String owner) {
    this.allocator = allocator;
    this.owner = owner;
  }

  public String owner() {
    return owner;
  }

  /** Allocates {@code bytes} (at least 1 byte is allocated, so every buffer has an address). */
  public synchronized long allocate(long bytes) {
    if (closed) {
      throw new IllegalStateException("device arena of " + owner + " is closed");
    }
    if (bytes < 0) {
      throw new IllegalArgumentException("negative allocation: " + bytes + " bytes");
    }
    long size = Math.max(1, bytes);
    long address = allocator.allocate(size);
    live.put(address, size);
    inUse += size;
    peak = Math.max(peak, inUse);
    return address;
  }

  /** Frees one allocation early; freeing what this arena does not hold is an error. */
  public synchronized void free(long address) {
    Long size = live.remove(address);
    if (size == null) {
      throw new IllegalArgumentException(String.format(
          "device address 0x%x is not held by the arena of %s", address, owner));
    }
    inUse -= size;
    reserved.values().removeIf(r -> r[0] == address);
    allocator.free(address);
  }

  /**
   * A buffer of at least {@code bytes} kept under {@code name}: the same address while it is big
   * enough, a new one (the old one freed) when it must grow. Contents are not preserved.
   */
  public synchronized long reserve(String name, long bytes) {
    long[] r = reserved.get(name);
    if (r != null && r[1] >= bytes) {
      return r[0];
    }
    if (r != null) {
      free(r[0]);
    }
    long size = Math.max(1, bytes);
    long address = allocate(size);
    reserved.put(name, new long[] {address, size});
    return address;
  }

  public synchronized long bytesInUse() {
    return inUse;
  }

  public synchronized long peakBytes() {
    return peak;
  }

  public synchronized int liveAllocations() {
    return live.size();
  }

  public synchronized boolean isClosed() {
    return closed;
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    List<Long> addresses = new ArrayList<>(live.keySet());
    live.clear();
    reserved.clear();
    inUse = 0;
    RuntimeException first = null;
    for (int i = addresses.size() - 1; i >= 0; i--) {
      try {
        allocator.free(addresses.get(i));
      } catch (RuntimeException e) {
        first = collect(first, e);
      }
    }
    try {
      allocator.close();
    } catch (RuntimeException e) {
      first = collect(first, e);
    }
    if (first != null) {
      throw first;
    }
  }

  private RuntimeException collect(RuntimeException first, RuntimeException e) {
    if (first == null) {
      return new IllegalStateException("freeing device memory of " + owner + " failed", e);
    }
    first.addSuppressed(e);
    return first;
  }
}
