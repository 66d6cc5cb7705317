package dev.mosaic.kernels.gpu;

/**
 * Raw device memory: what {@link DeviceArena} needs, so that it can be tested without a GPU. An
 * allocator may hold a device context; {@link DeviceArena#close()} closes it after freeing.
 */
public interface DeviceAllocator extends AutoCloseable {

  /** Allocates {@code bytes} (> 0) and returns the device address. */
  long allocate(long bytes);

  /** Frees an address returned by {@link #allocate}. */
  void free(long address);

  /** Releases what the allocator itself holds (a context); called once, after every free. */
  @Override
  default void close() {}
}
