package dev.mosaic.kernels.gpu;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

/**
 * What a CUDA fatbin holds: one entry per embedded binary, SASS (an ELF cubin for one
 * {@code sm_XY}) or PTX (for {@code compute_XY}, JIT-compiled by the driver on newer GPUs). Read
 * from the headers only: a container header (magic {@code 0xBA55ED50}, version, header size, body
 * size), then per entry a header of {@code headerSize} bytes with the kind at byte 0 (1 = PTX,
 * 2 = ELF), its header size at byte 4, the payload size at byte 8 and the architecture
 * ({@code 10*major + minor}) at byte 28, followed by the payload. The format is not documented by
 * NVIDIA; this reading matches what nvcc 13.0 writes (checked by the tests against the build's
 * own fatbin).
 */
public record FatbinInfo(List<Entry> entries) {
  public static final int MAGIC = 0xBA55ED50;

  /** One embedded binary. */
  public record Entry(Kind kind, int arch, long payloadBytes) {
    @Override
    public String toString() {
      return (kind == Kind.PTX ? "compute_" : "sm_") + arch + " " + kind;
    }
  }

  public enum Kind {
    PTX,
    SASS,
    OTHER
  }

  public FatbinInfo {
    entries = List.copyOf(entries);
  }

  /** Parses the headers; throws {@link IllegalArgumentException} naming what is wrong. */
  public static FatbinInfo parse(byte[] bytes) {
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    if (bytes.length < 16) {
      throw new IllegalArgumentException("not a fatbin: " + bytes.length + " bytes");
    }
    int magic = b.getInt(0);
    if (magic != MAGIC) {
      throw new IllegalArgumentException(String.format(
          "not a fatbin: magic 0x%08X, expected 0x%08X", magic, MAGIC));
    }
    int headerSize = Short.toUnsignedInt(b.getShort(6));
    long bodySize = b.getLong(8);
    long end = headerSize + bodySize;
    if (headerSize < 16 || end > bytes.length) {
      throw new IllegalArgumentException("fatbin header says " + end + " bytes, file has "
          + bytes.length);
    }
    List<Entry> entries = new ArrayList<>();
    long off = headerSize;
    while (off < end) {
      if (off + 32 > end) {
        throw new IllegalArgumentException("truncated fatbin entry at byte " + off);
      }
      int p = (int) off;
      int kind = Short.toUnsignedInt(b.getShort(p));
      long entryHeader = Integer.toUnsignedLong(b.getInt(p + 4));
      long payload = b.getLong(p + 8);
      int arch = b.getInt(p + 28);
      if (entryHeader < 32 || payload < 0 || off + entryHeader + payload > end) {
        throw new IllegalArgumentException("bad fatbin entry at byte " + off + " (header "
            + entryHeader + ", payload " + payload + ")");
      }
      Kind k = kind == 1 ? Kind.PTX : kind == 2 ? Kind.SASS : Kind.OTHER;
      entries.add(new Entry(k, arch, payload));
      off += entryHeader + payload;
    }
    return new FatbinInfo(entries);
  }

  /** Architectures with SASS, ascending ({@code 80} for sm_80). */
  public List<Integer> sassArchs() {
    return archs(Kind.SASS);
  }

  /** Architectures with PTX, ascending. */
  public List<Integer> ptxArchs() {
    return archs(Kind.PTX);
  }

  private List<Integer> archs(Kind kind) {
    TreeSet<Integer> s = new TreeSet<>();
    for (Entry e : entries) {
      if (e.kind() == kind) {
        s.add(e.arch());
      }
    }
    return List.copyOf(s);
  }

  /**
   * Whether a device of compute capability {@code arch} ({@code 10*major+minor}) can run this:
   * SASS of the same major version and a minor not above the device's, or PTX not newer than it.
   */
  public boolean runsOn(int arch) {
    for (Entry e : entries) {
      if (e.kind() == Kind.SASS && e.arch() / 10 == arch / 10 && e.arch() <= arch) {
        return true;
      }
      if (e.kind() == Kind.PTX && e.arch() <= arch) {
        return true;
      }
    }
    return false;
  }

  /** E.g. {@code "sm_80, sm_90 SASS + compute_90 PTX"}. */
  public String describe() {
    StringBuilder s = new StringBuilder();
    for (int a : sassArchs()) {
      s.append(s.length() == 0 ? "" : ", ").append("sm_").append(a);
    }
    s.append(s.length() == 0 ? "no" : "").append(" SASS");
    List<Integer> ptx = ptxArchs();
    if (!ptx.isEmpty()) {
      s.append(" + ");
      for (int i = 0; i < ptx.size(); i++) {
        s.append(i == 0 ? "" : ", ").append("compute_").append(ptx.get(i));
      }
      s.append(" PTX");
    }
    return s.toString();
  }
}
