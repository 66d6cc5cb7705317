package dev.mosaic.spark.gpu;

import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The ranks of one fake NCCL communicator (one unique id, or one color of a split), threads of
 * this JVM: point-to-point messages go through mailboxes, collectives through a barrier.
 */
final class FakeNcclWorld {
  private static final long TIMEOUT_S = 60;

  final int size;
  private final Map<String, BlockingQueue<byte[]>> mail = new ConcurrentHashMap<>();
  final Map<String, FakeNcclWorld> children = new ConcurrentHashMap<>();
  private final CyclicBarrier barrier;
  private final byte[][] slots;

  /** One rank's handle on a world. */
  static final class Rank {
    final FakeNcclWorld world;
    final int rank;
    int splits;

    Rank(FakeNcclWorld world, int rank) {
      this.world = world;
      this.rank = rank;
    }
  }

  FakeNcclWorld(int size) {
    this.size = size;
    this.barrier = new CyclicBarrier(size);
    this.slots = new byte[size][];
  }

  BlockingQueue<byte[]> box(int src, int dst) {
    return mail.computeIfAbsent(src + ">" + dst, k -> new LinkedBlockingQueue<>());
  }

  /** Every rank's contribution, once all have given theirs. */
  byte[][] exchange(int rank, byte[] mine) {
    try {
      slots[rank] = mine;
      barrier.await(TIMEOUT_S, TimeUnit.SECONDS);
      byte[][] all = slots.clone();
      barrier.await(TIMEOUT_S, TimeUnit.SECONDS);
      return all;
    } catch (Exception e) {
      throw new IllegalStateException("fake NCCL collective: a rank did not arrive", e);
    }
  }
}
