package dev.mosaic.spark.runner;

import dev.mosaic.spark.comm.CommConfig;
import dev.mosaic.spark.comm.WireDtype;
import java.io.Serializable;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.apache.spark.network.util.JavaUtils;

/**
 * Every Mosaic setting, typed, read from {@code spark.mosaic.*} keys of the Spark configuration and
 * overridable per call. Units follow Spark's own syntax ({@code 30s}, {@code 2min}, {@code 512m}).
 */
public final class MosaicConfig implements Serializable {
  private static final long serialVersionUID = 1L;

  /**
   * {@code spark.mosaic.comm.timeout} — bound on every wait of the task communicator (connect,
   * handshake, each transfer, each collective step). Duration; default {@code 120s}.
   */
  public static final String COMM_TIMEOUT = "spark.mosaic.comm.timeout";

  /**
   * {@code spark.mosaic.comm.maxFrameBytes} — largest message a peer may announce; larger ones are
   * rejected before allocation. Bytes; default {@code 1g}.
   */
  public static final String COMM_MAX_FRAME = "spark.mosaic.comm.maxFrameBytes";

  /**
   * {@code spark.mosaic.comm.wireDtype} — how the ring's K/V blocks travel between TCP
   * communicators: {@code fp32} (exact) or {@code bf16} (rounded to nearest even, half the bytes;
   * arithmetic stays fp32; each element off by at most a relative 2^-8). Collectives, gradients
   * and partial outputs always travel in fp32. Not available with NCCL, where
   * {@link #GPU_DTYPE}{@code =bf16} halves the bytes instead. Default {@code fp32}.
   */
  public static final String COMM_WIRE_DTYPE = "spark.mosaic.comm.wireDtype";

  /**
   * {@code spark.mosaic.task.threads} — compute threads per task (kernel and projections). Count;
   * default the value of {@code spark.task.cpus} (1 when unset).
   */
  public static final String TASK_THREADS = "spark.mosaic.task.threads";

  /**
   * {@code spark.mosaic.executor.waitTimeout} — how long {@code Mosaic.init} waits for executors
   * to register before it reports that the cluster has too few task slots. Duration; default
   * {@code 60s}.
   */
  public static final String EXECUTOR_WAIT = "spark.mosaic.executor.waitTimeout";

  /**
   * {@code spark.mosaic.job.maxAttempts} — how many times the driver runs a barrier job whose
   * result it collects directly (Spark does not retry such a stage). Only a transient failure
   * (communication, I/O, a timeout, a lost executor) runs it again; one that would recur (bad
   * input) is thrown at once. Count; default {@code 2}.
   */
  public static final String JOB_ATTEMPTS = "spark.mosaic.job.maxAttempts";

  /**
   * {@code spark.mosaic.device} — where the jobs that take no device argument (the tabular model,
   * the ML transformer, benchmarks) compute attention: {@code cpu}, {@code gpu}, or {@code auto}
   * (the GPU Spark assigned to the task, else the CPU). Default {@code auto}.
   */
  public static final String DEVICE = "spark.mosaic.device";

  /**
   * {@code spark.mosaic.comm.backend} — the communicator between the tasks of a barrier stage:
   * {@code tcp}, {@code nccl}, or {@code auto} (NCCL when the tasks compute on GPUs that Spark
   * schedules one per task, {@code spark.task.resource.gpu.amount=1}; TCP otherwise). Default
   * {@code auto}.
   */
  public static final String COMM_BACKEND = "spark.mosaic.comm.backend";

  /**
   * {@code spark.mosaic.gpu.dtype} — storage type of Q/K/V on the GPU: {@code fp32}, {@code fp16}
   * or {@code bf16} (arithmetic is fp32 in every case; the halves move half the bytes). Ignored
   * where the CPU computes. Default {@code fp32}.
   */
  public static final String GPU_DTYPE = "spark.mosaic.gpu.dtype";

  /**
   * {@code spark.mosaic.task.memory} — the attention memory one task may use, against which
   * {@code DataFrameAttention} decides whether a sequence runs whole in an ordinary task (packed
   * with others) or sharded over a barrier stage (the planner's per-device formulas). Bytes;
   * default {@code 1g}.
   */
  public static final String TASK_MEMORY = "spark.mosaic.task.memory";

  private final Map<String, String> values;

  private MosaicConfig(Map<String, String> values) {
    this.values = values;
  }

  /** The {@code spark.mosaic.*} keys of {@code conf}, plus {@code spark.task.cpus}. */
  public static MosaicConfig from(SparkConf conf) {
    Map<String, String> v = new LinkedHashMap<>();
    for (scala.Tuple2<String, String> kv : conf.getAllWithPrefix("spark.mosaic.")) {
      v.put("spark.mosaic." + kv._1(), kv._2());
    }
    v.put("spark.task.cpus", conf.get("spark.task.cpus", "1"));
    return new MosaicConfig(v);
  }

  public static MosaicConfig defaults() {
    return new MosaicConfig(new LinkedHashMap<>());
  }

  /** A copy with these keys replaced (per-call overrides). */
  public MosaicConfig with(String key, String value) {
    if (!key.startsWith("spark.mosaic.")) {
      throw new IllegalArgumentException("not a Mosaic setting: " + key);
    }
    Map<String, String> v = new LinkedHashMap<>(values);
    v.put(key, value);
    MosaicConfig c = new MosaicConfig(v);
    c.validate();
    return c;
  }

  /** Parses every setting once so that a bad value fails on the driver, naming the key. */
  public MosaicConfig validate() {
    commTimeout();
    maxFrameBytes();
    wireDtype();
    taskThreads();
    executorWait();
    jobAttempts();
    device();
    commBackend();
    gpuDtype();
    taskMemory();
    return this;
  }

  public Duration commTimeout() {
    return duration(COMM_TIMEOUT, "120s");
  }

  public long maxFrameBytes() {
    String raw = values.getOrDefault(COMM_MAX_FRAME, "1g");
    try {
      long b = JavaUtils.byteStringAsBytes(raw);
      if (b <= 0) {
        throw new NumberFormatException("not positive");
      }
      return b;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          COMM_MAX_FRAME + " must be a positive size such as 512m or 1g, got '" + raw + "'");
    }
  }

  /** Attention memory per task in bytes ({@link #TASK_MEMORY}). */
  public long taskMemory() {
    String raw = values.getOrDefault(TASK_MEMORY, "1g");
    try {
      long b = JavaUtils.byteStringAsBytes(raw.trim());
      if (b <= 0) {
        throw new NumberFormatException("not positive");
      }
      return b;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          TASK_MEMORY + " must be a positive size such as 512m or 1g, got '" + raw + "'");
    }
  }

  public int taskThreads() {
    return positiveInt(TASK_THREADS, values.getOrDefault("spark.task.cpus", "1"));
  }

  public int jobAttempts() {
    return positiveInt(JOB_ATTEMPTS, "2");
  }

  /** {@code cpu}, {@code gpu} or {@code auto} ({@link #DEVICE}). */
  public String device() {
    String raw = values.getOrDefault(DEVICE, dev.mosaic.spark.gpu.Devices.AUTO).trim();
    try {
      return dev.mosaic.spark.gpu.Devices.check(raw);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(DEVICE + ": " + e.getMessage());
    }
  }

  /** {@code tcp}, {@code nccl} or {@code auto} ({@link #COMM_BACKEND}). */
  public String commBackend() {
    String raw = values.getOrDefault(COMM_BACKEND, "auto").trim();
    if (!Transport.SETTINGS.contains(raw)) {
      throw new IllegalArgumentException(COMM_BACKEND + " must be auto, tcp or nccl, got '" + raw
          + "'");
    }
    return raw;
  }

  /** The storage type of attention inputs on the GPU ({@link #GPU_DTYPE}). */
  public dev.mosaic.kernels.gpu.GpuDtype gpuDtype() {
    String raw = values.getOrDefault(GPU_DTYPE, "fp32").trim();
    try {
      return dev.mosaic.kernels.gpu.GpuDtype.parse(raw);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(GPU_DTYPE + ": " + e.getMessage());
    }
  }

  private int positiveInt(String key, String dflt) {
    String raw = values.getOrDefault(key, dflt);
    try {
      int n = Integer.parseInt(raw.trim());
      if (n < 1) {
        throw new NumberFormatException("below 1");
      }
      return n;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(key + " must be a positive integer, got '" + raw + "'");
    }
  }

  public Duration executorWait() {
    return duration(EXECUTOR_WAIT, "60s");
  }

  /** How the ring's K/V blocks travel over TCP ({@link #COMM_WIRE_DTYPE}). */
  public WireDtype wireDtype() {
    String raw = values.getOrDefault(COMM_WIRE_DTYPE, "fp32");
    try {
      return WireDtype.parse(raw);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(COMM_WIRE_DTYPE + " must be fp32 or bf16, got '" + raw
          + "'");
    }
  }

  public CommConfig commConfig() {
    return new CommConfig(commTimeout(), maxFrameBytes(), wireDtype());
  }

  private Duration duration(String key, String dflt) {
    String raw = values.getOrDefault(key, dflt);
    try {
      long ms = JavaUtils.timeStringAsMs(raw);
      if (ms <= 0) {
        throw new NumberFormatException("not positive");
      }
      return Duration.ofMillis(ms);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          key + " must be a positive duration such as 30s or 2min, got '" + raw + "'");
    }
  }

  @Override
  public String toString() {
    return "MosaicConfig" + values;
  }
}
