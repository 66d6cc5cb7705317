package dev.mosaic.bench;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.ParameterStore;
import dev.mosaic.kernels.bench.AttentionPeer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * PyTorch's fused CPU attention ({@code torch.scaled_dot_product_attention}) in this JVM, through
 * DJL's PyTorch engine and a TorchScript module written by {@link TorchScriptArchive}. Inputs stay
 * in the benchmark's {@code (1, n, heads, d)} layout; the module views them as
 * {@code (1, heads, n, d)} (a transpose, no copy), as a PyTorch user with that layout would.
 * libtorch runs with {@code threads} intra-op threads and one inter-op thread.
 */
public final class TorchSdpaPeer implements AttentionPeer {
  /** {@code at::SDPBackend} values as {@code torch._fused_sdp_choice} returns them. */
  private static final String[] BACKENDS =
      {"math", "flash_attention", "efficient_attention", "cudnn_attention", "overrideable"};

  private final NDManager manager;
  private final PtSymbolBlock full;
  private final PtSymbolBlock causal;
  private final PtSymbolBlock choice;
  private final String engineVersion;
  private final String backends;

  public TorchSdpaPeer(int threads) {
    OpenMpWaitPolicy.parkIdleThreads();
    System.setProperty("ai.djl.offline", "true");
    System.setProperty("ai.djl.pytorch.num_threads", Integer.toString(threads));
    System.setProperty("ai.djl.pytorch.num_interop_threads", "1");
    Engine engine = Engine.getEngine("PyTorch");
    JniUtils.setNumThreads(threads);
    engineVersion = engine.getVersion();
    manager = NDManager.newBaseManager(Device.cpu(), "PyTorch");
    String view = "qh = torch.transpose(q, 1, 2)\nkh = torch.transpose(k, 1, 2)\n"
        + "vh = torch.transpose(v, 1, 2)\n";
    full = load("SdpaFull", view + "o = torch.scaled_dot_product_attention(qh, kh, vh, None, 0.,"
        + " False)\nreturn torch.transpose(o, 1, 2)");
    causal = load("SdpaCausal", view + "o = torch.scaled_dot_product_attention(qh, kh, vh, None,"
        + " 0., True)\nreturn torch.transpose(o, 1, 2)");
    choice = load("SdpaChoice", view + "a = torch._fused_sdp_choice(qh, kh, vh, None, 0., False)\n"
        + "b = torch._fused_sdp_choice(qh, kh, vh, None, 0., True)\nreturn torch.tensor([a, b])");
    try (NDManager probe = manager.newSubManager()) {
      Shape shape = new Shape(1, 128, 2, 64);
      String[] picked = backends(probe.zeros(shape), probe.zeros(shape), probe.zeros(shape));
      backends = picked[0].equals(picked[1]) ? picked[0]
          : picked[0] + " full, " + picked[1] + " causal";
    }
  }

  private PtSymbolBlock load(String className, String forward) {
    try {
      Path file = Files.createTempFile("mosaic-" + className, ".pt");
      try {
        Files.write(file, TorchScriptArchive.module(className, forward));
        return JniUtils.loadModule((PtNDManager) manager, file, false, new String[0],
            new String[0], false);
      } finally {
        Files.deleteIfExists(file);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the TorchScript module " + className, e);
    }
  }

  @Override
  public String name() {
    return "PyTorch " + engineVersion + " scaled_dot_product_attention (" + backends
        + ", " + JniUtils.getNumThreads() + " threads, OMP_WAIT_POLICY=" + OpenMpWaitPolicy.current()
        + ") via DJL";
  }

  /** The backend SDPA picks for these inputs, full and causal, e.g. "flash_attention". */
  String[] backends(NDArray q, NDArray k, NDArray v) {
    try (NDList out = choice.forward(new ParameterStore(manager, false), new NDList(q, k, v),
        false)) {
      long[] c = out.singletonOrThrow().toLongArray();
      return new String[] {backend(c[0]), backend(c[1])};
    }
  }

  private static String backend(long c) {
    return c >= 0 && c < BACKENDS.length ? BACKENDS[(int) c] : "backend " + c;
  }

  @Override
  public Call prepare(float[] q, float[] k, float[] v, int n, int heads, int headDim, float scale,
      boolean isCausal) {
    if (Math.abs(scale * Math.sqrt(headDim) - 1) > 1e-6) {
      throw new IllegalArgumentException("scale must be 1/sqrt(headDim) (SDPA's default), got "
          + scale + " for headDim " + headDim);
    }
    NDManager inputs = manager.newSubManager();
    Shape shape = new Shape(1, n, heads, headDim);
    NDList qkv = new NDList(inputs.create(q, shape), inputs.create(k, shape),
        inputs.create(v, shape));
    String picked = backends(qkv.get(0), qkv.get(1), qkv.get(2))[isCausal ? 1 : 0];
    if (!picked.equals("flash_attention")) {
      System.err.println("note: PyTorch SDPA picks " + picked + " for n=" + n + " d=" + headDim);
    }
    PtSymbolBlock block = isCausal ? causal : full;
    ParameterStore store = new ParameterStore(inputs, false);
    return new Call() {
      private NDList last;

      @Override
      public void run() {
        if (last != null) {
          last.close();
        }
        last = block.forward(store, qkv, false);
      }

      @Override
      public float[] output() {
        return last.singletonOrThrow().toFloatArray();
      }

      @Override
      public void close() {
        if (last != null) {
          last.close();
        }
        inputs.close();
      }
    };
  }

  @Override
  public void close() {
    full.close();
    causal.close();
    choice.close();
    manager.close();
  }
}
