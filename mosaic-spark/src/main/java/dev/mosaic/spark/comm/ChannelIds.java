package dev.mosaic.spark.comm;

import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;

/**
 * Channel ids of communicators. The root is 0. A split child's id hashes the path that created
 * it: (parent id, how many splits the parent did before, color). Every member of the child
 * computes the same path without extra messages; siblings differ by color, successive splits by
 * index, descendants by parent id. 64 bits of SHA-256 make an accidental collision between two
 * live communicators that share a connection negligible (about n^2 / 2^65 for n communicators).
 */
final class ChannelIds {

  static final long ROOT = 0;

  private ChannelIds() {}

  static long child(long parent, int splitIndex, int color) {
    try {
      MessageDigest sha = MessageDigest.getInstance("SHA-256");
      sha.update(ByteBuffer.allocate(16).putLong(parent).putInt(splitIndex).putInt(color).array());
      long id = ByteBuffer.wrap(sha.digest()).getLong();
      return id == ROOT ? 1 : id;
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("SHA-256 unavailable", e);
    }
  }
}
