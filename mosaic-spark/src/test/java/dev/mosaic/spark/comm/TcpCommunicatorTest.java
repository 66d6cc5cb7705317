package dev.mosaic.spark.comm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.comm.Communicator.ReduceOp;
import dev.mosaic.spark.comm.Communicator.Transfer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Every operation of {@link TcpCommunicator} with 1..4 ranks as threads on loopback. */
@Timeout(30)
class TcpCommunicatorTest {

  private static final CommConfig CONFIG =
      CommConfig.defaults().withTimeout(Duration.ofSeconds(20));

  private final long seed = dev.mosaic.test.TestSeed.get();

  private static int mod(int a, int n) {
    return Math.floorMod(a, n);
  }

  /** Length rank r sends in the ring tests: different per rank, one spans several chunks. */
  private static int ringLength(int r) {
    return 1000 + 37 * r;
  }

  @ParameterizedTest(name = "size {0}")
  @ValueSource(ints = {1, 2, 3, 4})
  void sendRecvRingShiftsWithSeveralInFlight(int n) throws Exception {
    int big = 300_000; // 1.2 MB: several staging chunks per frame
    try (Cluster cluster = Cluster.start(n, CONFIG)) {
      cluster.run(comm -> {
        int r = comm.rank();
        float[] mine = Payloads.random(seed, r, ringLength(r));
        float[] mineBig = Payloads.random(seed, r, 1, big);
        // Send from an offset window, receive into an offset window: neighbours must be untouched.
        float[] sendBuf = new float[ringLength(r) + 10];
        System.arraycopy(mine, 0, sendBuf, 3, mine.length);
        int left = mod(r - 1, n);
        int right = mod(r + 1, n);
        float[] fromLeft = new float[ringLength(left) + 9];
        Arrays.fill(fromLeft, 42f);
        float[] fromRight = new float[ringLength(right)];
        float[] bigFrom2Left = new float[big];

        Transfer plus1 = comm.sendRecv(sendBuf, 3, mine.length, right, fromLeft, 5,
            ringLength(left), left);
        Transfer minus1 = comm.sendRecv(mine, 0, mine.length, left, fromRight, 0,
            ringLength(right), right);
        Transfer plus2 = comm.sendRecv(mineBig, 0, big, mod(r + 2, n), bigFrom2Left, 0, big,
            mod(r - 2, n));
        // Await out of order: completion must not depend on it.
        plus2.await();
        minus1.await();
        plus1.await();
        plus1.await(); // idempotent

        assertArrayEquals(Payloads.random(seed, left, ringLength(left)),
            Arrays.copyOfRange(fromLeft, 5, 5 + ringLength(left)), "seed " + seed);
        assertEquals(42f, fromLeft[4]);
        assertEquals(42f, fromLeft[5 + ringLength(left)]);
        assertArrayEquals(Payloads.random(seed, right, ringLength(right)), fromRight);
        assertArrayEquals(Payloads.random(seed, mod(r - 2, n), 1, big), bigFrom2Left);

        long expectedBytes = 0;
        if (right != r) {
          expectedBytes += 4L * mine.length;
        }
        if (left != r) {
          expectedBytes += 4L * mine.length;
        }
        if (mod(r + 2, n) != r) {
          expectedBytes += 4L * big;
        }
        assertEquals(expectedBytes, comm.bytesSent(), "bytesSent counts payload to other ranks");
        return null;
      });
    }
  }

  @ParameterizedTest(name = "size {0}")
  @ValueSource(ints = {1, 2, 3, 4})
  void allGatherWithDifferentLengths(int n) throws Exception {
    try (Cluster cluster = Cluster.start(n, CONFIG)) {
      cluster.run(comm -> {
        for (int round = 0; round < 3; round++) {
          float[][] all = comm.allGather(Payloads.random(seed, comm.rank(), round,
              gatherLength(comm.rank(), round)));
          assertEquals(n, all.length);
          for (int src = 0; src < n; src++) {
            assertArrayEquals(Payloads.random(seed, src, round, gatherLength(src, round)),
                all[src], "from rank " + src + " round " + round + " seed " + seed);
          }
        }
        return null;
      });
    }
  }

  private static int gatherLength(int r, int round) {
    return r == 1 ? 0 : 3 + r * 1111 + round * 70_000; // includes an empty contribution
  }

  @ParameterizedTest(name = "size {0}")
  @ValueSource(ints = {1, 2, 3, 4})
  void allToAllWithDifferentLengths(int n) throws Exception {
    try (Cluster cluster = Cluster.start(n, CONFIG)) {
      cluster.run(comm -> {
        int r = comm.rank();
        float[][] send = new float[n][];
        for (int dst = 0; dst < n; dst++) {
          send[dst] = Payloads.random(seed, r, dst, pairLength(r, dst));
        }
        float[][] got = comm.allToAll(send);
        for (int src = 0; src < n; src++) {
          assertArrayEquals(Payloads.random(seed, src, r, pairLength(src, r)), got[src],
              "from rank " + src + " seed " + seed);
        }
        return null;
      });
    }
  }

  private static int pairLength(int src, int dst) {
    return ((src * 3 + dst * 5) % 7) * 1000 + (src == dst ? 1 : 0);
  }

  @ParameterizedTest(name = "size {0}")
  @ValueSource(ints = {1, 2, 3, 4})
  void allReduceSumAndMax(int n) throws Exception {
    int[] lengths = {0, 1, 2, 5, 1001, 100_003};
    try (Cluster cluster = Cluster.start(n, CONFIG)) {
      List<List<float[]>> perRank = cluster.run(comm -> {
        List<float[]> inexactSums = new ArrayList<>();
        for (int len : lengths) {
          // SUM of small integers: exact in any order, so compare with the test's own sum.
          float[] data = Payloads.integers(seed, comm.rank(), len);
          comm.allReduce(data, ReduceOp.SUM);
          float[] expected = new float[len];
          for (int src = 0; src < n; src++) {
            float[] x = Payloads.integers(seed, src, len);
            for (int i = 0; i < len; i++) {
              expected[i] += x[i];
            }
          }
          assertArrayEquals(expected, data, "SUM len " + len + " seed " + seed);

          // MAX is exact whatever the order.
          float[] values = Payloads.gaussian(seed, comm.rank(), len);
          comm.allReduce(values, ReduceOp.MAX);
          float[] max = new float[len];
          Arrays.fill(max, Float.NEGATIVE_INFINITY);
          for (int src = 0; src < n; src++) {
            float[] x = Payloads.gaussian(seed, src, len);
            for (int i = 0; i < len; i++) {
              max[i] = Math.max(max[i], x[i]);
            }
          }
          assertArrayEquals(max, values, "MAX len " + len + " seed " + seed);

          // SUM of arbitrary floats: close to the exact sum, and identical bits on every rank.
          float[] noisy = Payloads.gaussian(seed, comm.rank(), len);
          comm.allReduce(noisy, ReduceOp.SUM);
          double[] exact = new double[len];
          for (int src = 0; src < n; src++) {
            float[] x = Payloads.gaussian(seed, src, len);
            for (int i = 0; i < len; i++) {
              exact[i] += x[i];
            }
          }
          for (int i = 0; i < len; i++) {
            assertEquals(exact[i], noisy[i], 1e-5 * n, "inexact SUM at " + i);
          }
          inexactSums.add(noisy);
        }
        return inexactSums;
      });
      for (int r = 1; r < n; r++) {
        for (int k = 0; k < lengths.length; k++) {
          assertArrayEquals(perRank.get(0).get(k), perRank.get(r).get(k),
              "allReduce result differs between rank 0 and rank " + r);
        }
      }
    }
  }

  @ParameterizedTest(name = "size {0}")
  @ValueSource(ints = {1, 2, 3, 4})
  void barrierWaitsForEveryRank(int n) throws Exception {
    int rounds = 5;
    AtomicIntegerArray arrived = new AtomicIntegerArray(rounds);
    try (Cluster cluster = Cluster.start(n, CONFIG)) {
      cluster.run(comm -> {
        for (int round = 0; round < rounds; round++) {
          Thread.sleep(dev.mosaic.test.TestSeed.mix(seed, comm.rank(), round) & 15); // 0-15 ms
          arrived.incrementAndGet(round);
          comm.barrier();
          assertEquals(n, arrived.get(round), "round " + round + " left the barrier early");
        }
        return null;
      });
    }
  }

  @ParameterizedTest(name = "size {0}")
  @ValueSource(ints = {1, 2, 3, 4})
  void splitByParityWithReversedKeys(int n) throws Exception {
    try (Cluster cluster = Cluster.start(n, CONFIG)) {
      cluster.run(comm -> {
        int r = comm.rank();
        // A parent transfer stays in flight while the children talk: frames must not mix.
        float[] parentOut = Payloads.random(seed, r, 9, 5000);
        float[] parentIn = new float[5000];
        Transfer parentShift = comm.sendRecv(parentOut, 0, 5000, mod(r + 1, n), parentIn, 0, 5000,
            mod(r - 1, n));

        Communicator child = comm.split(r % 2, -r);
        List<Integer> members = new ArrayList<>(); // same parity, key -r ascending = r descending
        for (int m = n - 1; m >= 0; m--) {
          if (m % 2 == r % 2) {
            members.add(m);
          }
        }
        assertEquals(members.size(), child.size());
        assertEquals(members.indexOf(r), child.rank());
        checkCollectives(child, members, 100 + r % 2);

        // A nested split of the child, keys in child order.
        Communicator grandChild = child.split(0, child.rank());
        assertEquals(child.size(), grandChild.size());
        assertEquals(child.rank(), grandChild.rank());
        checkCollectives(grandChild, members, 200 + r % 2);

        parentShift.await();
        assertArrayEquals(Payloads.random(seed, mod(r - 1, n), 9, 5000), parentIn);

        List<Integer> everyone = new ArrayList<>();
        for (int m = 0; m < n; m++) {
          everyone.add(m);
        }
        checkCollectives(comm, everyone, 300); // parent still works after the children
        assertTrue(comm.bytesSent() >= child.bytesSent());
        assertTrue(child.bytesSent() >= grandChild.bytesSent());
        if (child.size() > 1) {
          assertTrue(grandChild.bytesSent() > 0);
        }
        child.close();
        comm.barrier(); // closing a child leaves the parent usable
        return null;
      });
    }
  }

  /** allGather, allReduce, ring sendRecv, allToAll and barrier in {@code c}; mesh ranks given. */
  private void checkCollectives(Communicator c, List<Integer> meshRanks, int salt) {
    int n = c.size();
    int me = c.rank();
    int meshRank = meshRanks.get(me);
    float[][] all = c.allGather(Payloads.random(seed, meshRank, salt, 10 + meshRank));
    for (int g = 0; g < n; g++) {
      int m = meshRanks.get(g);
      assertArrayEquals(Payloads.random(seed, m, salt, 10 + m), all[g], "group rank " + g);
    }

    float[] sum = Payloads.integers(seed + salt, meshRank, 333);
    c.allReduce(sum, ReduceOp.SUM);
    float[] expected = new float[333];
    for (int m : meshRanks) {
      float[] x = Payloads.integers(seed + salt, m, 333);
      for (int i = 0; i < x.length; i++) {
        expected[i] += x[i];
      }
    }
    assertArrayEquals(expected, sum);

    float[] in = new float[64];
    c.sendRecv(Payloads.random(seed, meshRank, salt + 1, 64), 0, 64, mod(me + 1, n), in, 0, 64,
        mod(me - 1, n)).await();
    assertArrayEquals(Payloads.random(seed, meshRanks.get(mod(me - 1, n)), salt + 1, 64), in);

    float[][] send = new float[n][];
    for (int g = 0; g < n; g++) {
      send[g] = new float[] {meshRank, meshRanks.get(g), salt};
    }
    float[][] got = c.allToAll(send);
    for (int g = 0; g < n; g++) {
      assertArrayEquals(new float[] {meshRanks.get(g), meshRank, salt}, got[g]);
    }
    c.barrier();
  }

  @Test
  void framesForAChannelNotYetWaitedOnAreBuffered() throws Exception {
    try (Cluster cluster = Cluster.start(2, CONFIG)) {
      cluster.run(comm -> {
        Communicator child = comm.split(0, comm.rank()); // same members, its own channel
        float[] none = new float[0];
        int rounds = 3; // enough that parent and child per-peer counters take the same values
        if (comm.rank() == 1) {
          List<Transfer> sent = new ArrayList<>();
          for (int i = 0; i < rounds; i++) {
            sent.add(child.sendRecv(Payloads.random(seed, 1, i, 1000 + i), 0, 1000 + i, 0,
                none, 0, 0, 0));
            sent.add(comm.sendRecv(Payloads.random(seed, 2, i, 10 + i), 0, 10 + i, 0,
                none, 0, 0, 0));
          }
          for (Transfer t : sent) {
            t.await();
          }
        } else {
          Thread.sleep(200); // every frame arrives before any receive is posted
          for (int i = 0; i < rounds; i++) { // parent's first, then the child's
            float[] got = new float[10 + i];
            comm.sendRecv(none, 0, 0, 1, got, 0, got.length, 1).await();
            assertArrayEquals(Payloads.random(seed, 2, i, 10 + i), got, "parent message " + i);
          }
          for (int i = 0; i < rounds; i++) {
            float[] got = new float[1000 + i];
            child.sendRecv(none, 0, 0, 1, got, 0, got.length, 1).await();
            assertArrayEquals(Payloads.random(seed, 1, i, 1000 + i), got, "child message " + i);
          }
        }
        return null;
      });
    }
  }

  @Test
  void ringThroughputSmoke() throws Exception {
    int n = 4;
    int floats = 1 << 20; // 4 MiB per step, like a K/V block
    int steps = 10;
    try (Cluster cluster = Cluster.start(n, CONFIG)) {
      List<Long> nanos = cluster.run(comm -> {
        int r = comm.rank();
        float[] a = Payloads.random(seed, r, floats);
        float[] b = new float[floats];
        comm.barrier();
        long t0 = System.nanoTime();
        for (int s = 0; s < steps; s++) {
          comm.sendRecv(a, 0, floats, mod(r + 1, n), b, 0, floats, mod(r - 1, n)).await();
          float[] t = a;
          a = b;
          b = t;
        }
        long elapsed = System.nanoTime() - t0;
        // After `steps` shifts this rank holds what rank r - steps started with.
        assertArrayEquals(Payloads.random(seed, mod(r - steps, n), floats), a);
        return elapsed;
      });
      long worst = nanos.stream().mapToLong(Long::longValue).max().orElseThrow();
      double mbPerSec = (double) steps * floats * 4 / (worst / 1e9) / 1e6;
      System.out.printf("ring: %d ranks x %d steps x 4 MiB: %.1f ms, %.0f MB/s per link%n", n,
          steps, worst / 1e6, mbPerSec);
    }
  }
}
