package dev.mosaic.spark.gpu;

import java.util.Base64;

/**
 * NCCL unique ids as text, so rank 0's id can travel through {@code BarrierTaskContext.allGather}
 * (which carries strings). An id is {@value #BYTES} opaque bytes ({@code NCCL_UNIQUE_ID_BYTES});
 * the text is standard base64 with padding (172 characters).
 */
public final class NcclIds {
  /** {@code NCCL_UNIQUE_ID_BYTES} of nccl.h. */
  public static final int BYTES = 128;

  private NcclIds() {}

  public static String encode(byte[] id) {
    if (id == null || id.length != BYTES) {
      throw new IllegalArgumentException("an NCCL unique id has " + BYTES + " bytes, got "
          + (id == null ? "null" : id.length));
    }
    return Base64.getEncoder().encodeToString(id);
  }

  public static byte[] decode(String text) {
    if (text == null || text.isEmpty()) {
      throw new IllegalArgumentException("no NCCL unique id: rank 0 sent none");
    }
    byte[] id;
    try {
      id = Base64.getDecoder().decode(text.strip());
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("the NCCL unique id from rank 0 is not base64: "
          + e.getMessage(), e);
    }
    if (id.length != BYTES) {
      throw new IllegalArgumentException("the NCCL unique id from rank 0 has " + id.length
          + " bytes, expected " + BYTES);
    }
    return id;
  }
}
