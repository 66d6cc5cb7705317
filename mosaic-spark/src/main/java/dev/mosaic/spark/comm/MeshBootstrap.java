package dev.mosaic.spark.comm;

import java.io.IOException;
import java.net.StandardSocketOptions;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.List;

/**
 * Builds a {@link Mesh}: this rank connects to every lower rank (in order) and then accepts one
 * connection from every higher rank ({@link AcceptLoop}), authenticating each with a {@link
 * Handshake}. Ordering the two phases this way cannot deadlock: rank 0 only accepts, and rank k's
 * connects only need the lower ranks to reach their accept phase, which they do by induction.
 * A connect talks to a known address, so any failure there is fatal; the accept phase drops
 * connections that fail the handshake and keeps waiting. Every step is bounded by the configured
 * timeout; any failure closes everything opened so far.
 */
final class MeshBootstrap {

  private final int rank;
  private final List<PeerAddress> peers;
  private final CommConfig config;
  private final Handshake handshake;
  private final SocketChannel[] channels;

  private MeshBootstrap(int rank, List<PeerAddress> peers, byte[] secret, CommConfig config) {
    this.rank = rank;
    this.peers = peers;
    this.config = config;
    this.handshake = new Handshake(secret, peers, rank);
    this.channels = new SocketChannel[peers.size()];
  }

  /** Builds the mesh and closes {@code server} in every case. */
  static Mesh build(int rank, List<PeerAddress> peers, ServerSocketChannel server, byte[] secret,
      CommConfig config) {
    return new MeshBootstrap(rank, peers, secret, config).run(server);
  }

  private Mesh run(ServerSocketChannel server) {
    boolean ok = false;
    try {
      for (int lower = 0; lower < rank; lower++) {
        channels[lower] = connectTo(lower);
      }
      if (rank + 1 < peers.size()) {
        new AcceptLoop(rank, channels, handshake, config, this::describe).run(server);
      }
      ok = true;
    } catch (IOException e) {
      throw new CommException("connect: rank " + rank + " (" + peers.get(rank) + ") could not"
          + " accept connections: " + e, e);
    } finally {
      closeQuietly(server);
      if (!ok) {
        for (SocketChannel ch : channels) {
          closeQuietly(ch);
        }
      }
    }
    return Mesh.open(rank, peers, channels, config);
  }

  private SocketChannel connectTo(int peerRank) {
    String peer = describe(peerRank);
    SocketChannel ch = null;
    try {
      ch = TimedIo.connect(peers.get(peerRank).resolve(), config, "connect: connecting to " + peer);
      configure(ch);
      try (TimedIo io = new TimedIo(ch, config)) {
        handshake.asConnector(io, peerRank, peer);
      }
      return ch;
    } catch (IOException e) {
      closeQuietly(ch);
      throw new CommException("connect: rank " + rank + " could not connect to " + peer + ": " + e,
          e);
    } catch (RuntimeException e) {
      closeQuietly(ch);
      throw e;
    }
  }

  private String describe(int r) {
    return "rank " + r + " (" + peers.get(r) + ")";
  }

  private static void configure(SocketChannel ch) throws IOException {
    ch.setOption(StandardSocketOptions.TCP_NODELAY, true); // small frames (barriers) go at once
    ch.setOption(StandardSocketOptions.SO_KEEPALIVE, true);
  }

  private static void closeQuietly(java.io.Closeable c) {
    if (c != null) {
      try {
        c.close();
      } catch (IOException ignored) {
        // Cleanup after a failure that is already being reported.
      }
    }
  }
}
