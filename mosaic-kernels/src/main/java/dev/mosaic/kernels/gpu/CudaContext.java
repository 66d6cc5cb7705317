package dev.mosaic.kernels.gpu;

import static org.bytedeco.cuda.global.cudart.cuCtxSetCurrent;
import static org.bytedeco.cuda.global.cudart.cuDeviceGet;
import static org.bytedeco.cuda.global.cudart.cuDeviceGetAttribute;
import static org.bytedeco.cuda.global.cudart.cuDevicePrimaryCtxRelease;
import static org.bytedeco.cuda.global.cudart.cuDevicePrimaryCtxRetain;
import static org.bytedeco.cuda.global.cudart.cuGetErrorName;
import static org.bytedeco.cuda.global.cudart.cuInit;
import static org.bytedeco.cuda.global.cudart.cuMemAlloc;
import static org.bytedeco.cuda.global.cudart.cuMemFree;
import static org.bytedeco.cuda.global.cudart.cudaSetDevice;

import org.bytedeco.cuda.cudart.CUctx_st;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.BytePointer;

/**
 * The primary CUDA context of one visible device, retained while this object is open. Every thread
 * that calls CUDA for this device first calls {@link #makeCurrent()} (which also points the runtime
 * API, and so NCCL, at the device).
 *
 * <p>This class links against the bytedeco CUDA bindings: use it only after {@link Gpu#available()}
 * said yes (the classes in {@code dev.mosaic.*.gpu} that do so are reached through that check).
 */
public final class CudaContext implements AutoCloseable {
  private final int ordinal;
  private final int device;
  private final CUctx_st ctx;
  private final int computeCapability;
  private boolean closed;

  private CudaContext(int ordinal, int device, CUctx_st ctx, int computeCapability) {
    this.ordinal = ordinal;
    this.device = device;
    this.ctx = ctx;
    this.computeCapability = computeCapability;
  }

  /** Retains the primary context of visible device {@code ordinal} and makes it current. */
  public static CudaContext primary(int ordinal) {
    check(cuInit(0), "cuInit");
    int[] dev = new int[1];
    check(cuDeviceGet(dev, ordinal), "cuDeviceGet(" + ordinal + ")");
    int[] major = new int[1];
    int[] minor = new int[1];
    check(cuDeviceGetAttribute(major, cudart.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev[0]),
        "cuDeviceGetAttribute");
    check(cuDeviceGetAttribute(minor, cudart.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev[0]),
        "cuDeviceGetAttribute");
    CUctx_st ctx = new CUctx_st();
    check(cuDevicePrimaryCtxRetain(ctx, dev[0]), "cuDevicePrimaryCtxRetain(" + ordinal + ")");
    CudaContext c = new CudaContext(ordinal, dev[0], ctx, major[0] * 10 + minor[0]);
    c.makeCurrent();
    return c;
  }

  /** Makes this context current on the calling thread (driver and runtime API). */
  public void makeCurrent() {
    if (closed) {
      throw new IllegalStateException("CUDA context of device " + ordinal + " is closed");
    }
    check(cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
    check(cudaSetDevice(ordinal), "cudaSetDevice(" + ordinal + ")");
  }

  /** The device's ordinal among the visible devices. */
  public int ordinal() {
    return ordinal;
  }

  /** {@code 10*major + minor}. */
  public int computeCapability() {
    return computeCapability;
  }

  public int attribute(int attribute) {
    int[] v = new int[1];
    check(cuDeviceGetAttribute(v, attribute, device), "cuDeviceGetAttribute(" + attribute + ")");
    return v[0];
  }

  /** An allocator on this device; it retains the context again, so close it (an arena does). */
  public DeviceAllocator allocator() {
    CudaContext own = primary(ordinal);
    return new DeviceAllocator() {
      @Override
      public long allocate(long bytes) {
        own.makeCurrent();
        long[] p = new long[1];
        check(cuMemAlloc(p, bytes), "cuMemAlloc(" + bytes + " bytes) on device " + ordinal);
        return p[0];
      }

      @Override
      public void free(long address) {
        own.makeCurrent();
        check(cuMemFree(address), "cuMemFree");
      }

      @Override
      public void close() {
        own.close();
      }
    };
  }

  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      check(cuDevicePrimaryCtxRelease(device), "cuDevicePrimaryCtxRelease(" + ordinal + ")");
    }
  }

  /** Throws {@link CudaException} naming {@code what} and the driver's error name. */
  public static void check(int result, String what) {
    if (result != 0) {
      throw new CudaException(what + " failed: " + errorName(result), result);
    }
  }

  /** E.g. {@code CUDA_ERROR_OUT_OF_MEMORY (2)}. */
  public static String errorName(int result) {
    BytePointer name = new BytePointer(); // set to a static string by the driver
    if (cuGetErrorName(result, name) == 0 && !name.isNull()) {
      return name.getString() + " (" + result + ")";
    }
    return "CUDA error " + result;
  }
}
