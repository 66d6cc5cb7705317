package dev.mosaic.spark.comm;

import dev.mosaic.spark.comm.Communicator.ReduceOp;

/**
 * Collective algorithms on top of {@link TcpCommunicator}'s point-to-point exchange. All ranks
 * must call them in the same order; each message's position in the per-peer stream is its tag.
 */
final class Collectives {

  private static final float[] EMPTY = new float[0];

  private Collectives() {}

  /**
   * Direct exchange: all size-1 sends and receives are in flight at once, each on its peer's
   * connection, so the rounds overlap. Receives are "any length", hence one round only.
   */
  static float[][] allGather(TcpCommunicator c, String op, float[] data) {
    int n = c.size();
    int r = c.rank();
    float[][] out = new float[n][];
    out[r] = data.clone();
    PendingTransfer[] pending = new PendingTransfer[n];
    for (int k = 1; k < n; k++) {
      int dst = (r + k) % n;
      int src = (r - k + n) % n;
      pending[src] = c.exchange(op, data, 0, data.length, dst, null, 0, PendingReceive.ANY, src);
    }
    for (int src = 0; src < n; src++) {
      if (src != r) {
        out[src] = pending[src].result();
      }
    }
    return out;
  }

  static float[][] allToAll(TcpCommunicator c, float[][] send) {
    int n = c.size();
    int r = c.rank();
    if (send.length != n) {
      throw new IllegalArgumentException(
          "allToAll needs one array per rank: got " + send.length + ", size is " + n);
    }
    for (int d = 0; d < n; d++) {
      if (send[d] == null) {
        throw new IllegalArgumentException("allToAll: send[" + d + "] is null");
      }
    }
    float[][] out = new float[n][];
    out[r] = send[r].clone();
    PendingTransfer[] pending = new PendingTransfer[n];
    for (int k = 1; k < n; k++) {
      int dst = (r + k) % n;
      int src = (r - k + n) % n;
      pending[src] = c.exchange("allToAll", send[dst], 0, send[dst].length, dst, null, 0,
          PendingReceive.ANY, src);
    }
    for (int src = 0; src < n; src++) {
      if (src != r) {
        out[src] = pending[src].result();
      }
    }
    return out;
  }

  /**
   * Ring all-reduce: a reduce-scatter then an all-gather, each of size-1 steps, so every rank
   * sends 2(n-1)/n of the data. Each chunk is reduced once, in a fixed order, on one rank and then
   * copied to all others, so the result is bit-identical everywhere.
   */
  static void allReduce(TcpCommunicator c, float[] data, ReduceOp op) {
    int n = c.size();
    if (n == 1) {
      return;
    }
    int r = c.rank();
    int next = (r + 1) % n;
    int prev = (r - 1 + n) % n;
    int len = data.length;
    float[] incoming = new float[(int) (((long) len + n - 1) / n)]; // no chunk is larger
    for (int s = 0; s < n - 1; s++) {
      int out = Math.floorMod(r - s, n);
      int in = Math.floorMod(r - s - 1, n);
      int inLen = chunkLength(len, in, n);
      c.exchange("allReduce", data, chunkStart(len, out, n), chunkLength(len, out, n), next,
          incoming, 0, inLen, prev).result();
      combine(data, chunkStart(len, in, n), incoming, inLen, op);
    }
    // Rank r now owns the final value of chunk r+1; pass the final chunks around the ring.
    for (int s = 0; s < n - 1; s++) {
      int out = Math.floorMod(r + 1 - s, n);
      int in = Math.floorMod(r - s, n);
      c.exchange("allReduce", data, chunkStart(len, out, n), chunkLength(len, out, n), next,
          data, chunkStart(len, in, n), chunkLength(len, in, n), prev).result();
    }
  }

  /** Dissemination barrier: ceil(log2 n) rounds of empty messages. */
  static void barrier(TcpCommunicator c) {
    int n = c.size();
    int r = c.rank();
    for (int k = 1; k < n; k <<= 1) {
      c.exchange("barrier", EMPTY, 0, 0, (r + k) % n, EMPTY, 0, 0, (r - k + n) % n).result();
    }
  }

  private static int chunkStart(int len, int chunk, int n) {
    return (int) ((long) len * chunk / n);
  }

  private static int chunkLength(int len, int chunk, int n) {
    return chunkStart(len, chunk + 1, n) - chunkStart(len, chunk, n);
  }

  private static void combine(float[] acc, int off, float[] in, int len, ReduceOp op) {
    switch (op) {
      case SUM:
        for (int i = 0; i < len; i++) {
          acc[off + i] += in[i];
        }
        break;
      case MAX:
        for (int i = 0; i < len; i++) {
          acc[off + i] = Math.max(acc[off + i], in[i]);
        }
        break;
      default:
        throw new IllegalArgumentException("unsupported reduce op " + op);
    }
  }
}
