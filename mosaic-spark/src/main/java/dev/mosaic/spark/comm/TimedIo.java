package dev.mosaic.spark.comm;

import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;

/**
 * Connect, read and write with a deadline, for the connecting side of the bootstrap: a plain blocking channel
 * has no read timeout, so a silent peer would hang the handshake forever. The channel is kept
 * non-blocking under a private selector while this object is open; {@link #close()} switches it
 * to blocking mode for the I/O threads.
 */
final class TimedIo implements Closeable {

  private final SocketChannel ch;
  private final Selector selector;
  private final SelectionKey key;
  private final CommConfig config;

  TimedIo(SocketChannel ch, CommConfig config) throws IOException {
    this.ch = ch;
    this.config = config;
    ch.configureBlocking(false);
    this.selector = Selector.open();
    this.key = ch.register(selector, 0);
  }

  /** Fills {@code buf}; {@code what} names operation and peer for the timeout message. */
  void readFully(ByteBuffer buf, String what) throws IOException {
    long deadline = deadline(config);
    while (buf.hasRemaining()) {
      int n = ch.read(buf);
      if (n < 0) {
        throw new EOFException("connection closed by the peer");
      }
      if (n == 0) {
        waitFor(SelectionKey.OP_READ, deadline, what);
      }
    }
  }

  void writeFully(ByteBuffer buf, String what) throws IOException {
    long deadline = deadline(config);
    while (buf.hasRemaining()) {
      if (ch.write(buf) == 0) {
        waitFor(SelectionKey.OP_WRITE, deadline, what);
      }
    }
  }

  /** Deregisters from the selector and makes the channel blocking again. */
  @Override
  public void close() throws IOException {
    selector.close(); // deregisters the key, which configureBlocking requires
    if (ch.isOpen()) {
      ch.configureBlocking(true);
    }
  }

  /** Opens a TCP connection within the timeout; the returned channel is blocking. */
  static SocketChannel connect(InetSocketAddress address, CommConfig config, String what)
      throws IOException {
    SocketChannel ch = SocketChannel.open();
    try (Selector selector = Selector.open()) {
      ch.configureBlocking(false);
      if (!ch.connect(address)) {
        ch.register(selector, SelectionKey.OP_CONNECT);
        long deadline = deadline(config);
        while (!ch.finishConnect()) {
          select(selector, deadline, config, what);
        }
      }
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
    ch.configureBlocking(true);
    return ch;
  }

  private void waitFor(int op, long deadline, String what) throws IOException {
    key.interestOps(op);
    select(selector, deadline, config, what);
    key.interestOps(0);
  }

  private static long deadline(CommConfig config) {
    return System.nanoTime() + config.timeout().toNanos();
  }

  /** One select with what is left of the deadline; throws the timeout CommException at the end. */
  private static void select(Selector selector, long deadline, CommConfig config, String what)
      throws IOException {
    long leftMs = (deadline - System.nanoTime()) / 1_000_000;
    if (leftMs <= 0) {
      throw new CommException(what + ": " + config.timedOut());
    }
    selector.select(leftMs);
    selector.selectedKeys().clear();
  }
}
