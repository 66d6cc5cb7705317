package dev.mosaic.spark.gpu;

import dev.mosaic.spark.comm.CommException;
import java.time.Duration;
import java.util.concurrent.locks.LockSupport;

/**
 * A communicator's CUDA stream and how it is waited for: events recorded on it are polled, with
 * the communicator's timeout and NCCL's asynchronous error, so that no wait hangs; either one
 * marks the communicator failed (its close then aborts instead of destroying).
 */
final class CommStream {
  private final CudaApi api;
  private final long context;
  private final long stream;
  private final long comm;
  private final int rank;
  private final Duration timeout;
  private volatile boolean failed;

  CommStream(CudaApi api, long context, long stream, long comm, int rank, Duration timeout) {
    this.api = api;
    this.context = context;
    this.stream = stream;
    this.comm = comm;
    this.rank = rank;
    this.timeout = timeout;
  }

  long handle() {
    return stream;
  }

  boolean failed() {
    return failed;
  }

  /** A new event recorded on {@code on}; the caller destroys it (or {@link #await}s it). */
  long record(long on) {
    api.makeCurrent(context);
    long e = api.createEvent();
    try {
      api.recordEvent(e, on);
    } catch (RuntimeException ex) {
      api.destroyEvent(e);
      throw ex;
    }
    return e;
  }

  /** A new event recorded on this stream. */
  long record() {
    return record(stream);
  }

  /** Waits for everything enqueued so far on this stream. */
  void drain(String what) {
    await(record(), what);
  }

  /**
   * Waits for {@code event} and destroys it, polling so that the timeout and NCCL's asynchronous
   * errors are seen.
   */
  void await(long event, String what) {
    long deadline = System.nanoTime() + timeout.toNanos();
    try {
      api.makeCurrent(context); // the waiting thread may not be the one that enqueued
      while (true) {
        int r = api.queryEvent(event);
        if (r == 0) {
          return;
        }
        if (r != CudaApi.NOT_READY) {
          failed = true;
          throw new CommException("rank " + rank + ": " + what + " failed: " + api.errorName(r));
        }
        String async = api.ncclAsyncError(comm);
        if (async != null) {
          failed = true;
          throw new CommException("rank " + rank + ": " + what + " failed in NCCL: " + async);
        }
        if (System.nanoTime() > deadline) {
          failed = true;
          throw new CommException("rank " + rank + ": " + what + " timed out after "
              + timeout.toMillis() + " ms (CommConfig.timeout)");
        }
        LockSupport.parkNanos(20_000);
      }
    } finally {
      api.destroyEvent(event);
    }
  }
}
