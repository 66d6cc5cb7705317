package dev.mosaic.spark.comm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.spark.comm.Communicator.Transfer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Pipe;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code wireDtype=bf16} over real TCP ranks: what {@link Communicator#sendRecvActivations}
 * delivers is exactly PyTorch-style round-to-nearest-even of what was sent (the conversion itself
 * is checked against PyTorch in {@link WireDtypeTest}), in half the bytes, while every other
 * operation on the same connections stays exact.
 */
@Timeout(60)
class TcpCommunicatorWireTest {

  private static final CommConfig BF16 = CommConfig.defaults()
      .withTimeout(Duration.ofSeconds(20)).withWireDtype(WireDtype.BF16);

  private final long seed = dev.mosaic.test.TestSeed.get();

  private static float[] rounded(float[] x) {
    float[] out = new float[x.length];
    for (int i = 0; i < x.length; i++) {
      out[i] = WireDtype.BF16.round(x[i]);
    }
    return out;
  }

  @Test
  void activationsTravelRoundedInHalfTheBytesAndEverythingElseExactly() throws Exception {
    int n = 3;
    int big = 300_001; // 600 KB in bf16: several staging chunks, odd length
    try (Cluster cluster = Cluster.start(n, BF16)) {
      cluster.run(comm -> {
        int r = comm.rank();
        int right = (r + 1) % n;
        int left = (r + n - 1) % n;
        float[] mine = Payloads.gaussian(seed, r, big);
        float[] send = new float[big + 7];
        System.arraycopy(mine, 0, send, 4, big);
        float[] recv = new float[big + 10];
        Arrays.fill(recv, 42f);
        comm.sendRecvActivations(send, 4, big, right, recv, 5, big, left).await();
        assertArrayEquals(rounded(Payloads.gaussian(seed, left, big)),
            Arrays.copyOfRange(recv, 5, 5 + big), "seed " + seed);
        assertEquals(42f, recv[4]);
        assertEquals(42f, recv[5 + big]);
        assertEquals(2L * big, comm.bytesSent());

        // Arbitrary bit patterns (subnormals, infinities, -0) round like the conversion says.
        float[] odd = Payloads.random(seed, r, 1, 1001);
        float[] oddIn = new float[1001];
        comm.sendRecvActivations(odd, 0, odd.length, right, oddIn, 0, 1001, left).await();
        assertArrayEquals(rounded(Payloads.random(seed, left, 1, 1001)), oddIn);

        // The same connections, plain sendRecv and a collective: untouched fp32.
        float[] exactIn = new float[big];
        comm.sendRecv(mine, 0, big, right, exactIn, 0, big, left).await();
        assertArrayEquals(Payloads.gaussian(seed, left, big), exactIn);
        float[] max = Payloads.gaussian(seed, 200 + r, 999);
        comm.allReduce(max, Communicator.ReduceOp.MAX);
        for (int i = 0; i < max.length; i++) {
          float m = Float.NEGATIVE_INFINITY;
          for (int q = 0; q < n; q++) {
            m = Math.max(m, Payloads.gaussian(seed, 200 + q, 999)[i]);
          }
          assertEquals(m, max[i], "allReduce element " + i + " must be exact");
        }
        assertTrue(comm.bytesSent() > 2L * (big + 1001) + 4L * big, "the allReduce counts too");
        return null;
      });
    }
  }

  @Test
  void aFrameThatArrivesBeforeItsReceiveIsWidenedToo() throws Exception {
    int len = 70_000;
    try (Cluster cluster = Cluster.start(2, BF16)) {
      cluster.run(comm -> {
        int other = 1 - comm.rank();
        float[] mine = Payloads.gaussian(seed, comm.rank(), len);
        float[] in = new float[len];
        // The data goes on a split channel, the barrier on the root: rank 0's data frame precedes
        // its barrier frame on the socket, so rank 1 has it buffered before posting the receive.
        Communicator child = comm.split(0, comm.rank());
        if (comm.rank() == 0) {
          Transfer t = child.sendRecvActivations(mine, 0, len, other, in, 0, len, other);
          comm.barrier();
          t.await();
        } else {
          comm.barrier();
          child.sendRecvActivations(mine, 0, len, other, in, 0, len, other).await();
        }
        assertArrayEquals(rounded(Payloads.gaussian(seed, other, len)), in, "seed " + seed);
        return null;
      });
    }
  }

  @Test
  void fp32WireKeepsActivationsExact() throws Exception {
    int len = 5000;
    try (Cluster cluster = Cluster.start(2, BF16.withWireDtype(WireDtype.FP32))) {
      cluster.run(comm -> {
        int other = 1 - comm.rank();
        float[] in = new float[len];
        comm.sendRecvActivations(Payloads.random(seed, comm.rank(), len), 0, len, other, in, 0,
            len, other).await();
        assertArrayEquals(Payloads.random(seed, other, len), in);
        assertEquals(4L * len, comm.bytesSent());
        return null;
      });
    }
  }

  @Test
  void aBf16FrameOfOddByteLengthIsRejectedBeforeAllocation() throws IOException {
    Pipe pipe = Pipe.open();
    try (Pipe.SinkChannel sink = pipe.sink(); Pipe.SourceChannel source = pipe.source()) {
      ByteBuffer header = ByteBuffer.allocate(FrameCodec.HEADER_BYTES)
          .order(ByteOrder.LITTLE_ENDIAN);
      header.putInt(FrameCodec.BF16_MAGIC).putLong(0).putLong(3).putLong(7).flip();
      sink.write(header);
      CommException e = assertThrows(CommException.class,
          () -> new FrameCodec().readHeader(source, 1 << 20, "rank 1 (test)"));
      assertTrue(e.getMessage().endsWith("announces 7 payload bytes, not a valid bf16 array"
          + " length"), e.getMessage());
    }
  }

  @Test
  void aBf16FrameRoundTripsThroughTheCodec() throws Exception {
    float[] x = Payloads.random(seed, 9, 1, 70_000); // two bf16 chunks
    Pipe pipe = Pipe.open();
    try (Pipe.SinkChannel sink = pipe.sink(); Pipe.SourceChannel source = pipe.source()) {
      Thread writer = new Thread(() -> {
        try {
          new FrameCodec().writeFrame(sink, new FrameKey(5, 6), x, 0, x.length, WireDtype.BF16);
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      });
      writer.start();
      FrameCodec codec = new FrameCodec();
      FrameHeader h = codec.readHeader(source, 1 << 20, "rank 1 (test)");
      assertEquals(WireDtype.BF16, h.wire());
      assertEquals(2L * x.length, h.payloadBytes());
      assertEquals(x.length, h.floats());
      float[] got = new float[x.length];
      codec.readPayload(source, got, 0, h.floats(), h.wire());
      assertArrayEquals(rounded(x), got);
      writer.join(10_000);
    }
  }
}
