package dev.mosaic.kernels.io;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/**
 * Bytes {@code [from, to)} of a file channel as a stream, read with positional reads (the
 * channel's own position is left alone). Not closing the channel: the caller owns it.
 */
final class ChannelInputStream extends InputStream {
  private final FileChannel channel;
  private final long to;
  private long pos;

  ChannelInputStream(FileChannel channel, long from, long to) {
    this.channel = channel;
    this.pos = from;
    this.to = to;
  }

  @Override
  public int read() throws IOException {
    byte[] one = new byte[1];
    return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    if (len == 0) {
      return 0;
    }
    long left = to - pos;
    if (left <= 0) {
      return -1;
    }
    int n = channel.read(ByteBuffer.wrap(b, off, (int) Math.min(len, left)), pos);
    if (n > 0) {
      pos += n;
    }
    return n;
  }
}
