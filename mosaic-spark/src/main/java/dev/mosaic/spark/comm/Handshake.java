package dev.mosaic.spark.comm;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.List;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Mutual authentication of a fresh connection with the job's shared secret. Messages (all
 * little-endian, fixed size, so nothing is allocated from a length the peer chose):
 *
 * <pre>
 *   connector -> acceptor  HELLO     magic, version, connector rank, size, nonceC[32]
 *   acceptor  -> connector CHALLENGE magic, version, acceptor rank, nonceA[32], proofA[32]
 *   connector -> acceptor  RESPONSE  verdict on proofA (1 byte), proofC[32] (zeros if rejected)
 *   acceptor  -> connector STATUS    verdict on proofC (1 byte)
 * </pre>
 *
 * The explicit verdicts let each side tell "the peer rejected my proof" (authentication failed)
 * from "the peer vanished" (EOF: it died or gave up on its own timeout).
 *
 * proofX = HMAC-SHA256(secret, role || nonce of the other side || own nonce || own rank || other
 * rank || job marker). The role byte and both nonces stop an attacker from reflecting a proof one
 * side made into another session; the job marker (a hash of the address list) stops a process of
 * a different job that happens to share the secret. The connector checks the acceptor's proof
 * before producing its own, and proofs are compared in constant time.
 *
 * <p>The connecting side runs here, blocking, and any failure throws {@link CommException}. The
 * accepting side is a step machine ({@link AcceptorSession}) driven by the non-blocking {@link
 * AcceptLoop}, so that a stray connection (port scan, health probe, silent socket) is dropped
 * without holding up the real peers; this class gives it the messages and proofs.
 */
final class Handshake {

  static final int MAGIC = 0x3148534D; // "MSH1"
  /** 2: frames may be abort notices ({@link FrameCodec#ABORT_MAGIC}). */
  static final int VERSION = 2;
  static final int NONCE_BYTES = 32;
  static final int MAC_BYTES = 32;
  static final int HELLO_BYTES = 4 * 4 + NONCE_BYTES;
  static final int CHALLENGE_BYTES = 3 * 4 + NONCE_BYTES + MAC_BYTES;
  static final int RESPONSE_BYTES = 1 + MAC_BYTES;
  private static final byte ROLE_ACCEPTOR = 'A';
  private static final byte ROLE_CONNECTOR = 'C';
  static final byte ACCEPTED = 1;
  static final byte REJECTED = 0;

  private static final SecureRandom RANDOM = new SecureRandom();

  private final SecretKeySpec key;
  private final byte[] jobMarker;
  private final int localRank;
  private final int size;

  Handshake(byte[] secret, List<PeerAddress> peers, int localRank) {
    if (secret == null || secret.length == 0) {
      throw new IllegalArgumentException("the shared secret must be non-empty");
    }
    this.key = new SecretKeySpec(secret.clone(), "HmacSHA256");
    this.jobMarker = jobMarker(peers);
    this.localRank = localRank;
    this.size = peers.size();
  }

  /** Binds proofs to this mesh: every rank derives the same marker from the same address list. */
  static byte[] jobMarker(List<PeerAddress> peers) {
    try {
      MessageDigest sha = MessageDigest.getInstance("SHA-256");
      sha.update("mosaic-comm-v1".getBytes(StandardCharsets.UTF_8));
      for (PeerAddress p : peers) {
        sha.update((p + "\n").getBytes(StandardCharsets.UTF_8));
      }
      return sha.digest();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("SHA-256 unavailable", e);
    }
  }

  /**
   * Connecting side: authenticates to {@code peerRank} and checks that the acceptor is that rank
   * and knows the secret. {@code peer} describes it for messages ("rank 0 (host:port)").
   */
  void asConnector(TimedIo io, int peerRank, String peer) throws IOException {
    String what = "connect: handshake with " + peer;
    byte[] nonceC = nonce();
    ByteBuffer hello = buffer(HELLO_BYTES);
    hello.putInt(MAGIC).putInt(VERSION).putInt(localRank).putInt(size).put(nonceC).flip();
    io.writeFully(hello, what);

    ByteBuffer challenge = buffer(CHALLENGE_BYTES);
    try {
      io.readFully(challenge, what);
    } catch (EOFException e) {
      throw new CommException("connect: handshake with " + peer + " failed: it closed the"
          + " connection instead of answering this rank's hello (it rejected the claimed rank or"
          + " size, or it gave up)");
    }
    challenge.flip();
    checkMagic(challenge.getInt(), challenge.getInt(), peer);
    int acceptorRank = challenge.getInt();
    byte[] nonceA = bytes(challenge, NONCE_BYTES);
    byte[] proofA = bytes(challenge, MAC_BYTES);
    if (acceptorRank != peerRank) {
      throw new CommException("connect: expected rank " + peerRank + " at " + peer
          + " but the process there says it is rank " + acceptorRank);
    }
    byte[] expected = proof(ROLE_ACCEPTOR, nonceC, nonceA, acceptorRank, localRank);
    ByteBuffer response = buffer(1 + MAC_BYTES);
    if (!MessageDigest.isEqual(expected, proofA)) {
      response.put(REJECTED).put(new byte[MAC_BYTES]).flip();
      tellQuietly(io, response, what);
      throw new CommException("connect: authentication failed for peer " + peer
          + ": its proof does not match the shared secret (different secret or job)");
    }
    response.put(ACCEPTED).put(proof(ROLE_CONNECTOR, nonceA, nonceC, localRank, acceptorRank))
        .flip();
    io.writeFully(response, what);

    ByteBuffer status = buffer(1);
    try {
      io.readFully(status, what);
    } catch (EOFException e) {
      throw new CommException("connect: handshake with " + peer + " failed: it closed the"
          + " connection instead of confirming (it died or gave up)");
    }
    if (status.get(0) != ACCEPTED) {
      throw new CommException("connect: authentication failed for peer " + peer
          + ": it rejected this rank's proof of the shared secret (different secret or job)");
    }
  }

  /** The size every peer's hello must announce. */
  int size() {
    return size;
  }

  /** Acceptor's CHALLENGE to a hello carrying {@code nonceC} from {@code connectorRank}. */
  ByteBuffer challenge(byte[] nonceC, byte[] nonceA, int connectorRank) {
    ByteBuffer challenge = buffer(CHALLENGE_BYTES);
    challenge.putInt(MAGIC).putInt(VERSION).putInt(localRank).put(nonceA)
        .put(proof(ROLE_ACCEPTOR, nonceC, nonceA, localRank, connectorRank)).flip();
    return challenge;
  }

  /** Constant-time check of the connector's proof in its RESPONSE. */
  boolean connectorProofMatches(byte[] nonceA, byte[] nonceC, int connectorRank, byte[] proofC) {
    byte[] expected = proof(ROLE_CONNECTOR, nonceA, nonceC, connectorRank, localRank);
    return MessageDigest.isEqual(expected, proofC);
  }

  /** Acceptor's one-byte STATUS. */
  static ByteBuffer status(boolean accepted) {
    return buffer(1).put(accepted ? ACCEPTED : REJECTED).flip();
  }

  /** Why a hello's magic or version is unacceptable, or null if both are fine. */
  static String badMagicOrVersion(int magic, int version) {
    if (magic != MAGIC) {
      return String.format("not a Mosaic communicator (handshake magic 0x%08X, expected 0x%08X)",
          magic, MAGIC);
    }
    if (version != VERSION) {
      return "handshake version " + version + ", this rank speaks " + VERSION;
    }
    return null;
  }

  /** Best-effort rejection notice: the failure is reported locally whether or not it arrives. */
  private static void tellQuietly(TimedIo io, ByteBuffer message, String what) {
    try {
      io.writeFully(message, what);
    } catch (IOException | CommException ignored) {
      // The peer will see EOF instead of the verdict.
    }
  }

  private byte[] proof(byte role, byte[] otherNonce, byte[] ownNonce, int ownRank, int otherRank) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(key);
      mac.update(role);
      mac.update(otherNonce);
      mac.update(ownNonce);
      mac.update(buffer(8).putInt(ownRank).putInt(otherRank).array());
      mac.update(jobMarker);
      return mac.doFinal();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HmacSHA256 unavailable", e);
    }
  }

  private static void checkMagic(int magic, int version, String peer) {
    String bad = badMagicOrVersion(magic, version);
    if (bad != null) {
      throw new CommException("connect: " + peer + ": " + bad);
    }
  }

  static byte[] nonce() {
    byte[] n = new byte[NONCE_BYTES];
    RANDOM.nextBytes(n);
    return n;
  }

  static ByteBuffer buffer(int bytes) {
    return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
  }

  static byte[] bytes(ByteBuffer from, int n) {
    byte[] b = new byte[n];
    from.get(b);
    return b;
  }
}
