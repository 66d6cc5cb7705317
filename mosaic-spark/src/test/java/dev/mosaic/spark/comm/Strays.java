package dev.mosaic.spark.comm;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Test helper: the things that hit a listener in real life and are not Mosaic peers. Every
 * socket it opens is closed by {@link #close()}.
 */
final class Strays implements AutoCloseable {

  /** How long a stray waits for the listener to hang up on it. */
  private static final int HANG_UP_WAIT_MS = 20_000;

  private final List<AutoCloseable> open = new ArrayList<>();

  /** A port scan: connect, then close without a byte. */
  void connectAndClose(String address) throws IOException {
    try (Socket s = socket(address)) {
      s.getOutputStream().flush();
    }
  }

  /** A health probe: "GET / HTTP/1.0" and wait for an answer; a socket to check later. */
  Socket httpGet(String address) throws IOException {
    return send(address, "GET / HTTP/1.0\r\nHost: probe\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
  }

  /** 64 random bytes (seeded), as a fuzzer or a confused client would send. */
  Socket randomBytes(String address, long seed) throws IOException {
    byte[] junk = new byte[64];
    new SplittableRandom(seed).nextBytes(junk);
    return send(address, junk);
  }

  /** A connection that never sends anything and stays open until {@link #close()}. */
  Socket silent(String address) throws IOException {
    return keep(socket(address));
  }

  /**
   * {@code n} connections started without waiting for them to complete (non-blocking), so a
   * full backlog cannot stall the test; they stay open, silent, until {@link #close()}.
   */
  void burst(String address, int n) throws IOException {
    InetSocketAddress to = PeerAddress.parse(address).resolve();
    for (int i = 0; i < n; i++) {
      SocketChannel ch = SocketChannel.open();
      open.add(ch);
      ch.configureBlocking(false);
      ch.connect(to);
    }
  }

  /**
   * True once the listener side closed {@code s} (EOF or reset), false if it still holds it after
   * a generous wait. Anything the listener sends before closing fails the check.
   */
  static boolean hungUp(Socket s) throws IOException {
    s.setSoTimeout(HANG_UP_WAIT_MS);
    InputStream in = s.getInputStream();
    try {
      return in.read() < 0;
    } catch (SocketTimeoutException e) {
      return false;
    } catch (SocketException e) {
      return true; // connection reset: closed with our bytes unread
    }
  }

  private Socket send(String address, byte[] bytes) throws IOException {
    Socket s = keep(socket(address));
    s.getOutputStream().write(bytes);
    s.getOutputStream().flush();
    return s;
  }

  private static Socket socket(String address) throws IOException {
    Socket s = new Socket();
    try {
      s.connect(PeerAddress.parse(address).resolve(), HANG_UP_WAIT_MS);
      return s;
    } catch (IOException e) {
      s.close();
      throw e;
    }
  }

  private Socket keep(Socket s) {
    open.add(s);
    return s;
  }

  @Override
  public void close() {
    for (AutoCloseable c : open) {
      try {
        c.close();
      } catch (Exception ignored) {
        // Test cleanup.
      }
    }
    open.clear();
  }
}
