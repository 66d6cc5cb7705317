package dev.mosaic.bench;

import com.sun.jna.Library;
import com.sun.jna.Native;

/**
 * libtorch's OpenMP (libgomp) keeps its idle threads spinning after each parallel region: with
 * {@code OMP_WAIT_POLICY} unset, for {@code GOMP_SPINCOUNT} = 300,000 pause loops, several
 * milliseconds. In a side-by-side run with as many threads as cores, that spinning takes the cores
 * from the Mosaic call that follows, which at n = 1,024 (a 5 ms call) ran at half its speed. So
 * the peer parks its idle threads ({@code PASSIVE}) unless the user chose a policy; PyTorch's own
 * speed was unchanged by it (docs/performance.md, "OpenMP's spinning threads").
 */
final class OpenMpWaitPolicy {
  private OpenMpWaitPolicy() {}

  /** The C library's setenv: libgomp reads the C environment when libtorch loads it. */
  interface C extends Library {
    int setenv(String name, String value, int overwrite);

    String getenv(String name);
  }

  /** Loaded once, on first use (JNA's load is a dlopen and a proxy: not for every call). */
  private static final class Libc {
    static final C INSTANCE = Native.load("c", C.class);
  }

  private static C c() {
    return Libc.INSTANCE;
  }

  /** Sets OMP_WAIT_POLICY=PASSIVE unless it is set; call before DJL loads libtorch. */
  static void parkIdleThreads() {
    if (System.getenv("OMP_WAIT_POLICY") == null) {
      c().setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    }
  }

  /** The policy libtorch sees, or "unset". */
  static String current() {
    String policy = c().getenv("OMP_WAIT_POLICY");
    return policy == null ? "unset" : policy;
  }
}
