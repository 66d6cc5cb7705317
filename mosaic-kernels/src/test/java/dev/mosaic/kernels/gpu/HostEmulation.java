package dev.mosaic.kernels.gpu;

import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;

/**
 * Builds and drives {@code src/main/cuda/emulation/host_main.cpp}: the real {@code .cu} kernels
 * compiled with g++ for the CPU (one thread per CUDA thread), so launches built by the Java side
 * ({@link FlashLaunch#arguments}, {@link HostPacking}) run without a GPU.
 */
final class HostEmulation {
  private final Path binary;

  private HostEmulation(Path binary) {
    this.binary = binary;
  }

  static Path moduleDir() {
    return Path.of(System.getProperty("basedir", System.getProperty("user.dir")));
  }

  static Path cudaDir() {
    return moduleDir().resolve("src/main/cuda");
  }

  /** A C++20 compiler on the PATH, or null. */
  static String compiler() {
    for (String c : new String[] {"g++", "c++", "clang++"}) {
      for (String dir : System.getenv().getOrDefault("PATH", "").split(java.io.File.pathSeparator)) {
        if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, c))) {
          return Path.of(dir, c).toString();
        }
      }
    }
    return null;
  }

  /** exp(x) = 2^(x·log2 e): the kernels take the score scale premultiplied by it. */
  static final float LOG2E = (float) (1.0 / Math.log(2));

  /**
   * For a test class's {@code @BeforeAll}: the harness, built with the C++ compiler on the PATH;
   * without one the class is skipped, saying why.
   */
  static HostEmulation buildOrSkip() throws IOException, InterruptedException {
    String cxx = compiler();
    Assumptions.assumeTrue(cxx != null, "no C++ compiler (g++, c++, clang++) on the PATH to build"
        + " the host emulation of the CUDA kernels");
    return build(cxx);
  }

  /** A little-endian buffer of {@code values}, as a launch's input. */
  static ByteBuffer floats(float[] values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(values);
    return b;
  }

  /** {@code n} NaNs: an output buffer in which every element the kernel fails to write shows. */
  static ByteBuffer nans(int n) {
    float[] x = new float[n];
    Arrays.fill(x, Float.NaN);
    return floats(x);
  }

  /** A little-endian buffer of {@code values} (cu_seqlens, valid keys). */
  static ByteBuffer ints(int[] values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asIntBuffer().put(values);
    return b;
  }

  /** A launch's little-endian float buffer back as an array. */
  static float[] toFloats(ByteBuffer b) {
    FloatBuffer f = b.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
    float[] x = new float[f.remaining()];
    f.get(x);
    return x;
  }

  /** Compiles the harness into target/ (again only when a source changed). */
  static HostEmulation build(String compiler) throws IOException, InterruptedException {
    Path out = moduleDir().resolve("target/cuda-emulation");
    Files.createDirectories(out);
    Path bin = out.resolve("mosaic-kernels-host");
    Path main = cudaDir().resolve("emulation/host_main.cpp");
    boolean fresh = Files.exists(bin);
    try (Stream<Path> sources = Stream.of(main, cudaDir().resolve("emulation/host_emulation.h"),
        cudaDir().resolve("flash_forward.cu"), cudaDir().resolve("flash_forward_tc.cu"),
        cudaDir().resolve("lse_merge.cu"), cudaDir().resolve("convert.cu"))) {
      for (Path s : (Iterable<Path>) sources::iterator) {
        if (!fresh || Files.getLastModifiedTime(s).compareTo(Files.getLastModifiedTime(bin)) > 0) {
          fresh = false;
        }
      }
    }
    if (!fresh) {
      Process p = new ProcessBuilder(compiler, "-O2", "-std=c++20", "-pthread", "-Wall",
          "-Wno-unknown-pragmas", "-Werror", "-DMOSAIC_HOST_EMULATION", "-o", bin.toString(),
          main.toString()).redirectErrorStream(true).start();
      String log = new String(p.getInputStream().readAllBytes());
      if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new AssertionError("compiling the host emulation failed:\n" + log);
      }
    }
    return new HostEmulation(bin);
  }

  /** Runs one launch; returns the buffers after it (inputs included, in order). */
  List<ByteBuffer> run(String kernel, int gridX, int gridY, int gridZ, int threads,
      int sharedBytes, List<KernelArg> args, List<ByteBuffer> buffers)
      throws IOException, InterruptedException {
    Path dir = Files.createTempDirectory(binary.getParent(), "launch");
    try {
      Path in = dir.resolve("launch.bin");
      Path outFile = dir.resolve("out.bin");
      try (OutputStream os = Files.newOutputStream(in);
          DataOutputStream d = new DataOutputStream(new java.io.BufferedOutputStream(os))) {
        d.write("MOSA".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        byte[] name = kernel.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        d.writeInt(Integer.reverseBytes(name.length));
        d.write(name);
        for (int v : new int[] {gridX, gridY, gridZ, threads, sharedBytes, args.size()}) {
          d.writeInt(Integer.reverseBytes(v));
        }
        for (KernelArg a : args) {
          d.writeInt(Integer.reverseBytes(a.type().ordinal()));
          d.writeLong(Long.reverseBytes(a.bits()));
        }
        d.writeInt(Integer.reverseBytes(buffers.size()));
        for (ByteBuffer b : buffers) {
          byte[] bytes = new byte[b.remaining()];
          b.duplicate().get(bytes);
          d.writeLong(Long.reverseBytes(bytes.length));
          d.write(bytes);
        }
      }
      Process p = new ProcessBuilder(binary.toString(), in.toString(), outFile.toString())
          .redirectErrorStream(true).start();
      String log = new String(p.getInputStream().readAllBytes());
      if (!p.waitFor(300, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new AssertionError(kernel + " did not finish in the host emulation");
      }
      if (p.exitValue() != 0) {
        throw new AssertionError(kernel + " failed in the host emulation (exit " + p.exitValue()
            + "): " + log);
      }
      byte[] all = Files.readAllBytes(outFile);
      List<ByteBuffer> result = new ArrayList<>();
      int off = 0;
      for (ByteBuffer b : buffers) {
        result.add(ByteBuffer.wrap(all, off, b.remaining()).slice()
            .order(ByteOrder.LITTLE_ENDIAN));
        off += b.remaining();
      }
      return result;
    } finally {
      try (Stream<Path> files = Files.list(dir)) {
        for (Path f : (Iterable<Path>) files::iterator) {
          Files.deleteIfExists(f);
        }
      }
      Files.deleteIfExists(dir);
    }
  }
}
