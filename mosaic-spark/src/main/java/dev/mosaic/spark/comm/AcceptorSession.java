package dev.mosaic.spark.comm;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.SocketChannel;

/**
 * The accepting side of one {@link Handshake} as a step machine over a non-blocking channel:
 * read HELLO, write CHALLENGE, read RESPONSE, write STATUS. {@link #advance} does whatever I/O
 * is possible without blocking and says what to wait for next; anything wrong throws {@link
 * Dropped} with a one-line reason and the {@link AcceptLoop} closes the connection. Magic and
 * version are checked as soon as their bytes arrive, so a health probe that sends a short request
 * and waits for an answer is dropped at once rather than at the handshake timeout.
 */
final class AcceptorSession {

  /** Why a connection was dropped. No stack trace: strays are expected, not bugs. */
  static final class Dropped extends Exception {
    private final boolean speaksMosaic;

    Dropped(String reason, boolean speaksMosaic) {
      super(reason, null, false, false);
      this.speaksMosaic = speaksMosaic;
    }

    /** Got past magic and version: more likely a misconfigured real peer than a stray. */
    boolean speaksMosaic() {
      return speaksMosaic;
    }
  }

  /** Whether a claimed rank may connect now: null if so, else why not ("which is ..."). */
  interface RankCheck {
    String problem(int claimedRank);
  }

  private enum Step { HELLO, CHALLENGE, RESPONSE, STATUS, DONE }

  private final Handshake handshake;
  private final SocketChannel ch;
  private final String remote;
  private final long acceptedNanos;
  private Step step = Step.HELLO;
  private ByteBuffer buf = Handshake.buffer(Handshake.HELLO_BYTES);
  private long received;
  private int claimedRank = -1;
  private byte[] nonceC;
  private byte[] nonceA;

  /** {@code ch} must be non-blocking; {@code remote} names it for messages. */
  AcceptorSession(Handshake handshake, SocketChannel ch, String remote, long acceptedNanos) {
    this.handshake = handshake;
    this.ch = ch;
    this.remote = remote;
    this.acceptedNanos = acceptedNanos;
  }

  SocketChannel channel() {
    return ch;
  }

  String remote() {
    return remote;
  }

  long acceptedNanos() {
    return acceptedNanos;
  }

  /** The authenticated rank, once {@link #advance} returned 0. */
  int rank() {
    return claimedRank;
  }

  /** Nothing received yet: the cheapest connection to give up when too many are pending. */
  boolean silent() {
    return received == 0;
  }

  /**
   * Moves the handshake on as far as the socket allows. Returns the {@link SelectionKey} interest
   * to wait for, or 0 once the peer is authenticated.
   */
  int advance(RankCheck ranks) throws Dropped {
    try {
      while (true) {
        switch (step) {
          case HELLO, RESPONSE -> {
            int n = ch.read(buf);
            if (n < 0) {
              throw closed();
            }
            received += n;
            if (step == Step.HELLO) {
              checkHelloPrefix();
            }
            if (buf.hasRemaining()) {
              return SelectionKey.OP_READ;
            }
            buf.flip();
            if (step == Step.HELLO) {
              onHello(ranks);
            } else {
              onResponse();
            }
          }
          case CHALLENGE, STATUS -> {
            ch.write(buf);
            if (buf.hasRemaining()) {
              return SelectionKey.OP_WRITE;
            }
            if (step == Step.STATUS) {
              step = Step.DONE;
              return 0;
            }
            step = Step.RESPONSE;
            buf = Handshake.buffer(Handshake.RESPONSE_BYTES);
          }
          default -> {
            return 0;
          }
        }
      }
    } catch (IOException e) {
      throw new Dropped(claim() + "the connection failed during the handshake: " + e.getMessage(),
          claimedRank >= 0);
    }
  }

  /** The reason to drop this connection when its handshake time is up. */
  Dropped timedOut(long millis) {
    String did = switch (step) {
      case HELLO -> received == 0 ? "sent nothing"
          : "sent " + received + " of " + Handshake.HELLO_BYTES + " hello bytes";
      case RESPONSE, CHALLENGE -> "did not answer the challenge";
      default -> "did not take the verdict";
    };
    return new Dropped(claim() + did + " within the handshake timeout of " + millis + " ms",
        claimedRank >= 0);
  }

  /** A scan or probe shows itself in its first bytes; no need to wait for a whole hello. */
  private void checkHelloPrefix() throws Dropped {
    int have = buf.position();
    if (have < 4) {
      return;
    }
    ByteBuffer view = buf.duplicate().order(buf.order()).flip(); // duplicate() resets the order
    int magic = view.getInt();
    int version = have >= 8 ? view.getInt() : Handshake.VERSION;
    String bad = Handshake.badMagicOrVersion(magic, version);
    if (bad != null) {
      throw new Dropped(bad, false);
    }
  }

  private void onHello(RankCheck ranks) throws Dropped {
    buf.getInt(); // magic and version were checked as they arrived
    buf.getInt();
    int rank = buf.getInt();
    int peerSize = buf.getInt();
    nonceC = Handshake.bytes(buf, Handshake.NONCE_BYTES);
    if (peerSize != handshake.size()) {
      throw new Dropped("claims rank " + rank + " of a communicator of size " + peerSize
          + ", this one has size " + handshake.size(), true);
    }
    String problem = ranks.problem(rank);
    if (problem != null) {
      throw new Dropped("claims rank " + rank + ", " + problem, true);
    }
    claimedRank = rank;
    nonceA = Handshake.nonce();
    buf = handshake.challenge(nonceC, nonceA, rank);
    step = Step.CHALLENGE;
  }

  private void onResponse() throws Dropped {
    if (buf.get() != Handshake.ACCEPTED) {
      throw new Dropped(claim() + "authentication failed: it rejected this rank's proof of the"
          + " shared secret (different secret or job)", true);
    }
    byte[] proofC = Handshake.bytes(buf, Handshake.MAC_BYTES);
    if (!handshake.connectorProofMatches(nonceA, nonceC, claimedRank, proofC)) {
      tellQuietly(Handshake.status(false));
      throw new Dropped(claim() + "authentication failed: its proof does not match the shared"
          + " secret (different secret or job)", true);
    }
    buf = Handshake.status(true);
    step = Step.STATUS;
  }

  private Dropped closed() {
    String did = switch (step) {
      case HELLO -> received == 0 ? "closed the connection without sending anything"
          : "closed the connection after " + received + " of " + Handshake.HELLO_BYTES
              + " hello bytes";
      default -> "closed the connection instead of answering the challenge (it gave up)";
    };
    return new Dropped(claim() + did, claimedRank >= 0);
  }

  /** "claiming rank 2: " once the hello was read, so the reason says who it pretended to be. */
  private String claim() {
    return claimedRank >= 0 ? "claiming rank " + claimedRank + ": " : "";
  }

  /** One non-blocking attempt: the verdict is a courtesy, the drop happens either way. */
  private void tellQuietly(ByteBuffer message) {
    try {
      ch.write(message);
    } catch (IOException ignored) {
      // The peer sees EOF instead of the verdict.
    }
  }
}
