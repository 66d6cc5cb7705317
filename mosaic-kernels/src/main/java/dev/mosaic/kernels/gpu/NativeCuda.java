package dev.mosaic.kernels.gpu;

/**
 * What the bytedeco-backed implementation ({@code CudaNative}) offers the rest of the package.
 * Nothing here mentions a bytedeco type, so the facade classes load without the CUDA jars.
 */
interface NativeCuda {

  /** Loads the native libraries and asks the driver what it sees. */
  Gpu.Report probe(Gpu.Status bindings);

  /** Flash and merge kernels on one device (ordinal among the visible ones). */
  FlashBackend openFlash(int device, GpuDtype dtype, DeviceArena arena);

  /** Raw memory on one device, for a {@link DeviceArena}. The returned allocator owns a context. */
  DeviceAllocator allocator(int device);
}
