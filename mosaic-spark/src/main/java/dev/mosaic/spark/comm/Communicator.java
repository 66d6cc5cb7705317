package dev.mosaic.spark.comm;

/**
 * NCCL-shaped collective communication among the {@link #size()} ranks of one barrier stage (or a
 * group split from it). Every collective must be called by all ranks of the communicator in the
 * same order. Every wait has a timeout and fails with {@link CommException} naming the peer.
 * Payloads are float32 arrays.
 */
public interface Communicator extends AutoCloseable {

  int rank();

  int size();

  /**
   * Starts sending {@code send[sendOff, sendOff+sendLen)} to rank {@code dst} and receiving exactly
   * {@code recvLen} floats from rank {@code src} into {@code recv[recvOff, ...)}; returns at once so
   * that compute overlaps the transfer. The arrays must not be touched until the handle completes.
   * {@code dst == rank()} / {@code src == rank()} copy locally.
   */
  Transfer sendRecv(float[] send, int sendOff, int sendLen, int dst, float[] recv, int recvOff,
      int recvLen, int src);

  /**
   * {@link #sendRecv} for activations that the receiver only computes with and never sends back
   * summed: the ring's K/V blocks. Here a communicator may move the payload in a narrower wire
   * type ({@link CommConfig#wireDtype}, bf16: rounded to nearest even on send, widened exactly on
   * receive), so the receiver gets each element within a relative 2^-8 of what was sent. That
   * error is paid once per element, whatever the number of ring steps. Gradients, reductions and
   * the running output with its log-sum-exp must use {@link #sendRecv}: they are summed or merged
   * hop after hop, so a rounding per hop would add up, and the LSE's exponent amplifies its error.
   * {@code bytesSent} counts the bytes that actually travel. By default this is {@link #sendRecv}.
   */
  default Transfer sendRecvActivations(float[] send, int sendOff, int sendLen, int dst,
      float[] recv, int recvOff, int recvLen, int src) {
    return sendRecv(send, sendOff, sendLen, dst, recv, recvOff, recvLen, src);
  }

  /** Every rank's {@code data} (lengths may differ), indexed by rank. */
  float[][] allGather(float[] data);

  /** {@code send[r]} goes to rank r; returns what each rank sent to this one, indexed by source. */
  float[][] allToAll(float[][] send);

  /** Element-wise reduction over all ranks, in place; every rank ends with the same result. */
  void allReduce(float[] data, ReduceOp op);

  /**
   * A sub-communicator of the ranks that pass the same {@code color}, ordered by {@code key} (ties
   * by rank). Collective over this communicator. The child shares this communicator's connections
   * and is closed with it.
   */
  Communicator split(int color, int key);

  /** Returns once every rank has entered it. */
  void barrier();

  /** Payload bytes this rank has sent through this communicator and its children (for planners). */
  long bytesSent();

  /** Closes sockets and threads; idempotent. */
  @Override
  void close();

  enum ReduceOp {
    SUM,
    MAX
  }

  /** A pending {@link #sendRecv}. */
  interface Transfer {
    /** Blocks until both directions are complete, or throws {@link CommException} on timeout. */
    void await();
  }
}
