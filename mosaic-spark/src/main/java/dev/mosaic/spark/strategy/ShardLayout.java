package dev.mosaic.spark.strategy;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Which global sequence positions each rank holds: one or more contiguous segments per rank,
 * stored in the rank's local order. {@link #contiguous} gives rank r the r-th slice (sizes may
 * differ by one, or be given explicitly); {@link #zigzag} cuts the sequence into 2p chunks and
 * gives rank r chunks r and 2p−1−r, so under a causal mask every rank does the same work.
 */
public final class ShardLayout implements java.io.Serializable {
  private static final long serialVersionUID = 1L;

  /** {@code length} positions starting at global position {@code start}. */
  public record Segment(long start, int length) implements java.io.Serializable {}

  private final long total;
  private final Segment[][] segments;

  private ShardLayout(long total, Segment[][] segments) {
    this.total = total;
    this.segments = segments;
  }

  /** {@code parts} nearly equal contiguous slices of {@code total} positions. */
  public static ShardLayout contiguous(long total, int parts) {
    checkParts(parts);
    int[] sizes = new int[parts];
    for (int r = 0; r < parts; r++) {
      sizes[r] = Math.toIntExact(cut(total, parts, r + 1) - cut(total, parts, r));
    }
    return contiguous(sizes);
  }

  /** Contiguous slices with the given sizes, in rank order (uneven shards). */
  public static ShardLayout contiguous(int[] sizes) {
    checkParts(sizes.length);
    Segment[][] segs = new Segment[sizes.length][];
    long pos = 0;
    for (int r = 0; r < sizes.length; r++) {
      if (sizes[r] < 0) {
        throw new IllegalArgumentException("shard " + r + " has negative size " + sizes[r]);
      }
      segs[r] = new Segment[] {new Segment(pos, sizes[r])};
      pos += sizes[r];
    }
    return new ShardLayout(pos, segs);
  }

  /** 2·parts chunks; rank r holds chunk r then chunk 2·parts−1−r. */
  public static ShardLayout zigzag(long total, int parts) {
    checkParts(parts);
    int chunks = 2 * parts;
    Segment[][] segs = new Segment[parts][];
    for (int r = 0; r < parts; r++) {
      int a = r;
      int b = chunks - 1 - r;
      segs[r] = new Segment[] {
          new Segment(cut(total, chunks, a), Math.toIntExact(cut(total, chunks, a + 1)
              - cut(total, chunks, a))),
          new Segment(cut(total, chunks, b), Math.toIntExact(cut(total, chunks, b + 1)
              - cut(total, chunks, b)))};
    }
    return new ShardLayout(total, segs);
  }

  /**
   * The layout of groups of consecutive ranks: part g holds the segments of ranks
   * {@code g·groupSize .. g·groupSize + groupSize − 1}, in that order.
   */
  public ShardLayout grouped(int groupSize) {
    if (groupSize < 1 || parts() % groupSize != 0) {
      throw new IllegalArgumentException(
          parts() + " shards cannot be grouped by " + groupSize + " (use a divisor)");
    }
    Segment[][] segs = new Segment[parts() / groupSize][];
    for (int g = 0; g < segs.length; g++) {
      List<Segment> all = new ArrayList<>();
      for (int r = g * groupSize; r < (g + 1) * groupSize; r++) {
        all.addAll(Arrays.asList(segments[r]));
      }
      segs[g] = all.toArray(new Segment[0]);
    }
    return new ShardLayout(total, segs);
  }

  private static long cut(long total, int parts, int i) {
    return total * i / parts;
  }

  private static void checkParts(int parts) {
    if (parts < 1) {
      throw new IllegalArgumentException("need at least one shard, got " + parts);
    }
  }

  public int parts() {
    return segments.length;
  }

  public long total() {
    return total;
  }

  /** The segments of rank r, in its local row order. */
  public List<Segment> segments(int rank) {
    return List.of(segments[rank]);
  }

  /** Number of positions rank r holds. */
  public int size(int rank) {
    int n = 0;
    for (Segment s : segments[rank]) {
      n += s.length();
    }
    return n;
  }

  /** The largest number of positions any rank holds (sizes the transfer buffers). */
  public int maxSize() {
    int m = 0;
    for (int r = 0; r < parts(); r++) {
      m = Math.max(m, size(r));
    }
    return m;
  }

  /** For every global position, in order: the rank that holds it and its local row there. */
  public int[][] owners() {
    int[][] own = new int[Math.toIntExact(total)][];
    for (int r = 0; r < segments.length; r++) {
      int local = 0;
      for (Segment s : segments[r]) {
        for (int i = 0; i < s.length(); i++) {
          own[Math.toIntExact(s.start() + i)] = new int[] {r, local++};
        }
      }
    }
    return own;
  }

  @Override
  public String toString() {
    List<String> parts = new ArrayList<>();
    for (Segment[] s : segments) {
      parts.add(Arrays.toString(s));
    }
    return "ShardLayout(" + total + ": " + String.join(", ", parts) + ")";
  }
}
