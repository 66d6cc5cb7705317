package dev.mosaic.spark.gpu;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * The one barrier round that starts an NCCL communicator (each round costs about a second): every
 * task sends a {@link Hello} — its rank, host, GPU, task name, and from rank 0 the NCCL unique id —
 * through {@code BarrierTaskContext.allGather}; a task that failed to bind a GPU or make the id
 * still sends one, carrying the error, so no peer is left waiting. {@link #plan} then checks the
 * whole stage before NCCL starts: errors, missing ranks, two ranks on one GPU. Pure (no CUDA).
 */
public final class NcclBootstrap {
  private static final String VERSION = "mosaic-nccl-1";

  private NcclBootstrap() {}

  /**
   * @param ncclId base64 NCCL unique id (rank 0 only), else ""
   * @param error why this task cannot take part, else ""
   */
  public record Hello(int rank, String host, String gpuId, String task, String ncclId,
      String error) {}

  /** What every rank learns from the round. */
  public record Plan(byte[] ncclId, List<GpuBinding.TaskGpu> tasks) {}

  public static String encode(Hello h) {
    StringBuilder s = new StringBuilder(VERSION);
    for (String f : new String[] {Integer.toString(h.rank()), h.host(), h.gpuId(), h.task(),
        h.ncclId(), h.error()}) {
      s.append('.').append(Base64.getUrlEncoder().withoutPadding()
          .encodeToString((f == null ? "" : f).getBytes(StandardCharsets.UTF_8)));
    }
    return s.toString();
  }

  public static Hello decode(String text) {
    String[] p = text.split("\\.", -1);
    if (p.length != 7 || !p[0].equals(VERSION)) {
      throw new IllegalArgumentException("not a Mosaic NCCL bootstrap message: '"
          + (text.length() > 60 ? text.substring(0, 60) + "..." : text) + "'");
    }
    String[] f = new String[6];
    for (int i = 0; i < 6; i++) {
      f[i] = new String(Base64.getUrlDecoder().decode(p[i + 1]), StandardCharsets.UTF_8);
    }
    return new Hello(Integer.parseInt(f[0]), f[1], f[2], f[3], f[4], f[5]);
  }

  /**
   * Checks the gathered messages (index = rank) and returns rank 0's id; throws
   * {@link IllegalStateException} naming the rank, host and problem.
   */
  public static Plan plan(String[] gathered, int size) {
    if (gathered.length != size) {
      throw new IllegalStateException("NCCL bootstrap: " + gathered.length + " messages for "
          + size + " ranks");
    }
    List<Hello> hellos = new ArrayList<>();
    List<String> errors = new ArrayList<>();
    for (int r = 0; r < size; r++) {
      Hello h = decode(gathered[r]);
      if (h.rank() != r) {
        throw new IllegalStateException("NCCL bootstrap: message " + r + " comes from rank "
            + h.rank());
      }
      if (!h.error().isEmpty()) {
        errors.add("rank " + r + " (" + h.task() + ") on " + h.host() + ": " + h.error());
      }
      hellos.add(h);
    }
    if (!errors.isEmpty()) {
      throw new IllegalStateException("NCCL communicator not started: " + String.join("; ",
          errors));
    }
    List<GpuBinding.TaskGpu> tasks = new ArrayList<>();
    for (Hello h : hellos) {
      tasks.add(new GpuBinding.TaskGpu(h.rank(), h.task(), h.host(), h.gpuId()));
    }
    GpuBinding.checkDistinct(tasks);
    return new Plan(NcclIds.decode(hellos.get(0).ncclId()), tasks);
  }
}
