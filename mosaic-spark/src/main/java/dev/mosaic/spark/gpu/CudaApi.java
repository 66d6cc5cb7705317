package dev.mosaic.spark.gpu;

import dev.mosaic.kernels.gpu.DeviceAllocator;
import java.nio.ByteBuffer;

/**
 * The few CUDA driver and NCCL calls that {@link NcclCommunicator} and the device-resident ring
 * make, with every handle (context, stream, event, communicator, pinned or device address) an
 * opaque {@code long}. {@link BytedecoCudaApi} delegates to the bytedeco bindings; tests pass a
 * counting fake, so the communicator's bookkeeping (which event is destroyed how often, what is
 * freed, which context is current, which stream a call goes to, how many bytes cross the PCIe
 * bus) is checked on machines without a GPU. Failures throw, naming the call.
 */
public interface CudaApi {
  /** {@link #queryEvent} of an event whose work is still running. */
  int NOT_READY = 600; // CUDA_ERROR_NOT_READY

  /** Element types NCCL moves. */
  enum NcclType {
    FLOAT32,
    INT32,
    UINT8
  }

  // ---- contexts ------------------------------------------------------------------------------

  /** Retains the primary context of visible device {@code ordinal} and makes it current. */
  long retainContext(int ordinal);

  /** Makes {@code context} current on the calling thread (driver and runtime API). */
  void makeCurrent(long context);

  void releaseContext(long context);

  /** Raw device memory on {@code ordinal}, for a {@code DeviceArena}. */
  DeviceAllocator allocator(int ordinal);

  // ---- streams and events --------------------------------------------------------------------

  long createStream();

  void destroyStream(long stream);

  long createEvent();

  void recordEvent(long event, long stream);

  /** 0 when done, {@link #NOT_READY}, or the error code of the failed work. */
  int queryEvent(long event);

  void destroyEvent(long event);

  /** Work enqueued on {@code stream} from now on waits for {@code event}; the host does not. */
  void streamWaitEvent(long stream, long event);

  /** E.g. {@code CUDA_ERROR_OUT_OF_MEMORY (2)}. */
  String errorName(int result);

  // ---- memory and copies ---------------------------------------------------------------------

  /** Page-locked host memory (async copies need it); the context must be current. */
  long allocHost(long bytes);

  void freeHost(long address);

  /** {@code bytes} bytes of pinned memory at {@code address}, in native byte order. */
  ByteBuffer hostBytes(long address, long bytes);

  void copyHostToDevice(long device, long host, long bytes, long stream);

  void copyDeviceToHost(long host, long device, long bytes, long stream);

  /** Sets {@code count} 32-bit words at {@code device} to {@code bits}. */
  void fillDevice32(long device, int bits, long count, long stream);

  // ---- NCCL ----------------------------------------------------------------------------------

  /** A fresh unique id (rank 0 makes it). */
  byte[] ncclUniqueId();

  /** {@code ncclCommInitRank}: blocks until every rank has joined; the context must be current. */
  long ncclInitRank(int size, byte[] uniqueId, int rank);

  void ncclGroupStart();

  void ncclGroupEnd();

  void ncclSend(long buffer, long count, NcclType type, int peer, long comm, long stream);

  void ncclRecv(long buffer, long count, NcclType type, int peer, long comm, long stream);

  void ncclAllGather(long in, long out, long count, NcclType type, long comm, long stream);

  /** Sum, or max when {@code max}. */
  void ncclAllReduce(long in, long out, long count, NcclType type, boolean max, long comm,
      long stream);

  /** {@code ncclCommSplit}; collective over {@code comm}. */
  long ncclSplit(long comm, int color, int key);

  int ncclUserRank(long comm);

  int ncclCount(long comm);

  /** NCCL's asynchronous error on {@code comm} as a message, or null while there is none. */
  String ncclAsyncError(long comm);

  void ncclDestroy(long comm);

  /** Releases peers blocked in NCCL (after a failure or timeout). */
  void ncclAbort(long comm);
}
