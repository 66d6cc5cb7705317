package dev.mosaic.spark.gpu;

import static org.bytedeco.cuda.global.cudart.CU_EVENT_DISABLE_TIMING;
import static org.bytedeco.cuda.global.cudart.CU_STREAM_NON_BLOCKING;
import static org.bytedeco.cuda.global.cudart.cuEventCreate;
import static org.bytedeco.cuda.global.cudart.cuEventDestroy;
import static org.bytedeco.cuda.global.cudart.cuEventQuery;
import static org.bytedeco.cuda.global.cudart.cuEventRecord;
import static org.bytedeco.cuda.global.cudart.cuMemAllocHost;
import static org.bytedeco.cuda.global.cudart.cuMemFreeHost;
import static org.bytedeco.cuda.global.cudart.cuMemcpyDtoHAsync;
import static org.bytedeco.cuda.global.cudart.cuMemcpyHtoDAsync;
import static org.bytedeco.cuda.global.cudart.cuMemsetD32Async;
import static org.bytedeco.cuda.global.cudart.cuStreamCreate;
import static org.bytedeco.cuda.global.cudart.cuStreamDestroy;
import static org.bytedeco.cuda.global.cudart.cuStreamWaitEvent;
import static org.bytedeco.cuda.global.nccl.ncclCommAbort;
import static org.bytedeco.cuda.global.nccl.ncclCommCount;
import static org.bytedeco.cuda.global.nccl.ncclCommDestroy;
import static org.bytedeco.cuda.global.nccl.ncclCommGetAsyncError;
import static org.bytedeco.cuda.global.nccl.ncclCommInitRank;
import static org.bytedeco.cuda.global.nccl.ncclCommSplit;
import static org.bytedeco.cuda.global.nccl.ncclCommUserRank;
import static org.bytedeco.cuda.global.nccl.ncclFloat32;
import static org.bytedeco.cuda.global.nccl.ncclGetErrorString;
import static org.bytedeco.cuda.global.nccl.ncclGetUniqueId;
import static org.bytedeco.cuda.global.nccl.ncclInProgress;
import static org.bytedeco.cuda.global.nccl.ncclInt32;
import static org.bytedeco.cuda.global.nccl.ncclMax;
import static org.bytedeco.cuda.global.nccl.ncclSuccess;
import static org.bytedeco.cuda.global.nccl.ncclSum;
import static org.bytedeco.cuda.global.nccl.ncclUint8;

import dev.mosaic.kernels.gpu.CudaContext;
import dev.mosaic.kernels.gpu.DeviceAllocator;
import dev.mosaic.spark.comm.CommException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.nccl.ncclComm;
import org.bytedeco.cuda.nccl.ncclConfig_t;
import org.bytedeco.cuda.nccl.ncclUniqueId;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;

/**
 * {@link CudaApi} over the bytedeco CUDA and NCCL bindings: one call each, results checked.
 * Handles are the native addresses (contexts: a key into the retained {@link CudaContext}s).
 * Links against bytedeco: reached only after {@code Gpu.available()}.
 */
final class BytedecoCudaApi implements CudaApi {
  static final BytedecoCudaApi INSTANCE = new BytedecoCudaApi();

  private final AtomicLong contextIds = new AtomicLong();
  private final Map<Long, CudaContext> contexts = new ConcurrentHashMap<>();

  private BytedecoCudaApi() {}

  @Override
  public long retainContext(int ordinal) {
    long id = contextIds.incrementAndGet();
    contexts.put(id, CudaContext.primary(ordinal));
    return id;
  }

  @Override
  public void makeCurrent(long context) {
    context(context).makeCurrent();
  }

  @Override
  public void releaseContext(long context) {
    CudaContext c = contexts.remove(context);
    if (c != null) {
      c.close();
    }
  }

  private CudaContext context(long id) {
    CudaContext c = contexts.get(id);
    if (c == null) {
      throw new IllegalStateException("CUDA context " + id + " was released");
    }
    return c;
  }

  @Override
  public DeviceAllocator allocator(int ordinal) {
    try (CudaContext c = CudaContext.primary(ordinal)) {
      return c.allocator(); // retains the context again for itself
    }
  }

  @Override
  public long createStream() {
    CUstream_st s = new CUstream_st();
    check(cuStreamCreate(s, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    return s.address();
  }

  @Override
  public void destroyStream(long stream) {
    check(cuStreamDestroy(stream(stream)), "cuStreamDestroy");
  }

  @Override
  public long createEvent() {
    CUevent_st e = new CUevent_st();
    check(cuEventCreate(e, CU_EVENT_DISABLE_TIMING), "cuEventCreate");
    return e.address();
  }

  @Override
  public void recordEvent(long event, long stream) {
    check(cuEventRecord(event(event), stream(stream)), "cuEventRecord");
  }

  @Override
  public int queryEvent(long event) {
    return cuEventQuery(event(event));
  }

  @Override
  public void destroyEvent(long event) {
    check(cuEventDestroy(event(event)), "cuEventDestroy");
  }

  @Override
  public void streamWaitEvent(long stream, long event) {
    check(cuStreamWaitEvent(stream(stream), event(event), 0), "cuStreamWaitEvent");
  }

  @Override
  public String errorName(int result) {
    return CudaContext.errorName(result);
  }

  @Override
  public long allocHost(long bytes) {
    BytePointer p = new BytePointer();
    check(cuMemAllocHost(p, bytes), "cuMemAllocHost(" + bytes + " bytes)");
    return p.address();
  }

  @Override
  public void freeHost(long address) {
    check(cuMemFreeHost(at(address)), "cuMemFreeHost");
  }

  @Override
  public ByteBuffer hostBytes(long address, long bytes) {
    if (bytes == 0) {
      return ByteBuffer.allocate(0).order(ByteOrder.nativeOrder());
    }
    BytePointer p = new BytePointer(at(address));
    p.capacity(bytes);
    return p.position(0).limit(bytes).asByteBuffer().order(ByteOrder.nativeOrder());
  }

  @Override
  public void copyHostToDevice(long device, long host, long bytes, long stream) {
    check(cuMemcpyHtoDAsync(device, at(host), bytes, stream(stream)), "cuMemcpyHtoDAsync");
  }

  @Override
  public void copyDeviceToHost(long host, long device, long bytes, long stream) {
    check(cuMemcpyDtoHAsync(at(host), device, bytes, stream(stream)), "cuMemcpyDtoHAsync");
  }

  @Override
  public void fillDevice32(long device, int bits, long count, long stream) {
    check(cuMemsetD32Async(device, bits, count, stream(stream)), "cuMemsetD32Async");
  }

  @Override
  public byte[] ncclUniqueId() {
    ncclUniqueId id = new ncclUniqueId();
    nccl(ncclGetUniqueId(id), "ncclGetUniqueId");
    byte[] b = new byte[NcclIds.BYTES];
    for (int i = 0; i < b.length; i++) {
      b[i] = id.internal(i);
    }
    return b;
  }

  @Override
  public long ncclInitRank(int size, byte[] uniqueId, int rank) {
    ncclUniqueId uid = new ncclUniqueId();
    for (int i = 0; i < uniqueId.length; i++) {
      uid.internal(i, uniqueId[i]);
    }
    ncclComm comm = new ncclComm();
    nccl(ncclCommInitRank(comm, size, uid, rank),
        "ncclCommInitRank(rank " + rank + " of " + size + ")");
    return comm.address();
  }

  @Override
  public void ncclGroupStart() {
    nccl(org.bytedeco.cuda.global.nccl.ncclGroupStart(), "ncclGroupStart");
  }

  @Override
  public void ncclGroupEnd() {
    nccl(org.bytedeco.cuda.global.nccl.ncclGroupEnd(), "ncclGroupEnd");
  }

  @Override
  public void ncclSend(long buffer, long count, NcclType type, int peer, long comm, long stream) {
    nccl(org.bytedeco.cuda.global.nccl.ncclSend(at(buffer), count, type(type), peer, comm(comm),
        stream(stream)), "ncclSend");
  }

  @Override
  public void ncclRecv(long buffer, long count, NcclType type, int peer, long comm, long stream) {
    nccl(org.bytedeco.cuda.global.nccl.ncclRecv(at(buffer), count, type(type), peer, comm(comm),
        stream(stream)), "ncclRecv");
  }

  @Override
  public void ncclAllGather(long in, long out, long count, NcclType type, long comm, long stream) {
    nccl(org.bytedeco.cuda.global.nccl.ncclAllGather(at(in), at(out), count, type(type),
        comm(comm), stream(stream)), "ncclAllGather");
  }

  @Override
  public void ncclAllReduce(long in, long out, long count, NcclType type, boolean max, long comm,
      long stream) {
    nccl(org.bytedeco.cuda.global.nccl.ncclAllReduce(at(in), at(out), count, type(type),
        max ? ncclMax : ncclSum, comm(comm), stream(stream)), "ncclAllReduce");
  }

  @Override
  public long ncclSplit(long comm, int color, int key) {
    ncclComm child = new ncclComm();
    nccl(ncclCommSplit(comm(comm), color, key, child, (ncclConfig_t) null),
        "ncclCommSplit(color " + color + ", key " + key + ")");
    return child.address();
  }

  @Override
  public int ncclUserRank(long comm) {
    int[] r = new int[1];
    nccl(ncclCommUserRank(comm(comm), r), "ncclCommUserRank");
    return r[0];
  }

  @Override
  public int ncclCount(long comm) {
    int[] n = new int[1];
    nccl(ncclCommCount(comm(comm), n), "ncclCommCount");
    return n[0];
  }

  @Override
  public String ncclAsyncError(long comm) {
    int[] async = new int[1];
    ncclCommGetAsyncError(comm(comm), async);
    if (async[0] == ncclSuccess || async[0] == ncclInProgress) {
      return null;
    }
    return ncclGetErrorString(async[0]).getString();
  }

  @Override
  public void ncclDestroy(long comm) {
    nccl(ncclCommDestroy(comm(comm)), "ncclCommDestroy");
  }

  @Override
  public void ncclAbort(long comm) {
    nccl(ncclCommAbort(comm(comm)), "ncclCommAbort");
  }

  // ---- handles -------------------------------------------------------------------------------

  private static int type(NcclType t) {
    return switch (t) {
      case FLOAT32 -> ncclFloat32;
      case INT32 -> ncclInt32;
      case UINT8 -> ncclUint8;
    };
  }

  private static CUstream_st stream(long address) {
    return new CUstream_st(at(address));
  }

  private static CUevent_st event(long address) {
    return new CUevent_st(at(address));
  }

  private static ncclComm comm(long address) {
    return new ncclComm(at(address));
  }

  /** An address as the Pointer the bindings take. */
  private static Pointer at(long address) {
    return new Address(address);
  }

  private static final class Address extends Pointer {
    Address(long address) {
      this.address = address;
    }
  }

  private static void check(int result, String what) {
    CudaContext.check(result, what);
  }

  private static void nccl(int result, String what) {
    if (result != ncclSuccess) {
      throw new CommException(what + " failed: " + ncclGetErrorString(result).getString()
          + " (" + result + ")");
    }
  }
}
