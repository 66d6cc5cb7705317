package dev.mosaic.spark.comm;

import java.io.IOException;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * A hand-driven peer for failure tests: speaks the real handshake (so it gets past
 * authentication) and then writes whatever frames, bad headers or partial payloads a test wants.
 */
final class FakePeer implements AutoCloseable {

  private final SocketChannel ch;
  private final FrameCodec codec = new FrameCodec();

  private FakePeer(SocketChannel ch) {
    this.ch = ch;
  }

  /** Connects to {@code addresses.get(target)} and authenticates as {@code claimedRank}. */
  static FakePeer connect(List<String> addresses, int target, int claimedRank, byte[] secret,
      CommConfig config) throws IOException {
    List<PeerAddress> peers = new ArrayList<>();
    addresses.forEach(a -> peers.add(PeerAddress.parse(a)));
    String name = "rank " + target + " (" + peers.get(target) + ")";
    SocketChannel ch = TimedIo.connect(peers.get(target).resolve(), config, "fake connect");
    try (TimedIo io = new TimedIo(ch, config)) {
      new Handshake(secret, peers, claimedRank).asConnector(io, target, name);
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
    return new FakePeer(ch);
  }

  void sendFrame(long seq, float[] data) throws IOException {
    codec.writeFrame(ch, new FrameKey(ChannelIds.ROOT, seq), data, 0, data.length);
  }

  void sendHeader(long seq, long payloadBytes) throws IOException {
    codec.writeHeader(ch, new FrameKey(ChannelIds.ROOT, seq), payloadBytes);
  }

  void sendRawBytes(int count) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(count);
    while (b.hasRemaining()) {
      ch.write(b);
    }
  }

  /** An abort notice as a real rank writes it (one line, at most FrameCodec.MAX_ABORT_BYTES). */
  void sendAbort(String reason) throws IOException {
    codec.writeAbort(ch, reason);
  }

  /** An abort notice header announcing {@code bytes}, followed by {@code text} as is. */
  void sendRawAbort(long bytes, byte[] text) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(FrameCodec.HEADER_BYTES + text.length)
        .order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(FrameCodec.ABORT_MAGIC).putLong(0).putLong(0).putLong(bytes).put(text).flip();
    while (b.hasRemaining()) {
      ch.write(b);
    }
  }

  @Override
  public void close() throws IOException {
    ch.close();
  }

  /**
   * A real rank 0 (connecting in the background) and a fake rank 1 of a 2-rank job. The fake's
   * own listener only provides an address; nobody connects to the highest rank.
   */
  record Pair(TcpCommunicator real, FakePeer fake, List<String> addresses)
      implements AutoCloseable {

    static Pair start(CommConfig config) throws Exception {
      TcpCommunicator.Listener l0 = TcpCommunicator.listen(InetAddress.getLoopbackAddress());
      TcpCommunicator.Listener l1 = TcpCommunicator.listen(InetAddress.getLoopbackAddress());
      List<String> addresses = List.of(l0.address(), l1.address());
      l1.close();
      CompletableFuture<TcpCommunicator> real = new CompletableFuture<>();
      Thread t = new Thread(() -> {
        try {
          real.complete(TcpCommunicator.connect(0, addresses, l0, Cluster.SECRET, config));
        } catch (Throwable e) {
          real.completeExceptionally(e);
        }
      }, "test-real-rank-0");
      t.setDaemon(true);
      t.start();
      FakePeer fake = connect(addresses, 0, 1, Cluster.SECRET, config);
      return new Pair(real.get(30, java.util.concurrent.TimeUnit.SECONDS), fake, addresses);
    }

    @Override
    public void close() throws IOException {
      real.close();
      fake.close();
    }
  }
}
