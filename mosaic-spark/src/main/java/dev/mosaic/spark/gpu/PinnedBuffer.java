package dev.mosaic.spark.gpu;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;

/**
 * Page-locked host memory, grown on demand: asynchronous copies are only asynchronous from pinned
 * memory. Allocating and freeing make the owner's context current first (the calling thread may
 * have none, and pinned memory belongs to a context). Not thread-safe; its owner serialises access.
 */
final class PinnedBuffer {
  private final CudaApi api;
  private final long context;
  private long address;
  private long capacity;

  PinnedBuffer(CudaApi api, long context) {
    this.api = api;
    this.context = context;
  }

  /** At least {@code bytes} bytes (the old buffer is freed when it must grow). */
  void ensure(long bytes) {
    if (address != 0 && capacity >= bytes) {
      return;
    }
    free();
    long n = Math.max(256, bytes);
    api.makeCurrent(context);
    address = api.allocHost(n);
    capacity = n;
  }

  /** The address (after {@link #ensure}). */
  long address() {
    return address;
  }

  ByteBuffer bytes(long n) {
    ensure(n);
    return api.hostBytes(address, n);
  }

  FloatBuffer floats(long n) {
    return bytes(n).asFloatBuffer();
  }

  boolean allocated() {
    return address != 0;
  }

  void free() {
    if (address != 0) {
      long a = address;
      address = 0;
      capacity = 0;
      api.makeCurrent(context);
      api.freeHost(a);
    }
  }
}
