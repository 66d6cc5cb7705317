package dev.mosaic.test;

import java.util.regex.Pattern;
import org.opentest4j.TestAbortedException;

/**
 * With {@code CI=true}, a test that would skip itself because a tool is missing (g++, nvcc,
 * Python and its packages, jupyter, ...) fails instead: CI installs those tools (.ci/run), so a
 * missing one is a broken CI machine, not a green run. Skips that the hardware decides stay skips:
 * GPU tests without a GPU, CPU-only checks on a GPU machine, NCCL with fewer than two GPUs. So do
 * skips asked for on the command line ({@code -Dmosaic.cuda.skip=true}: no nvcc run, no fatbin).
 *
 * <p>Registered for every test class through {@code META-INF/services}; outside CI it does nothing.
 */
public final class NoSkipsOnCi extends FailureMapping {

  /** Skip reasons that name the hardware: a GPU (present or absent) or NCCL. */
  private static final Pattern HARDWARE = Pattern.compile("\\bGPUs?\\b|\\bNCCL\\b");

  /** Skip reasons about nvcc or the fatbin, which -Dmosaic.cuda.skip=true makes legitimate. */
  private static final Pattern NVCC = Pattern.compile("nvcc|fatbin|mosaic\\.cuda\\.skip");

  static boolean onCi() {
    String ci = System.getenv("CI");
    return ci != null && (ci.equalsIgnoreCase("true") || ci.equals("1"));
  }

  static boolean allowedOnCi(String reason, boolean cudaSkipped) {
    String r = reason == null ? "" : reason;
    return HARDWARE.matcher(r).find() || (cudaSkipped && NVCC.matcher(r).find());
  }

  static Throwable judge(Throwable t) {
    if (!(t instanceof TestAbortedException) || !onCi()
        || allowedOnCi(t.getMessage(), Boolean.getBoolean("mosaic.cuda.skip"))) {
      return t;
    }
    // With the seed note itself: JUnit may run SeedOnFailure before this handler.
    return SeedOnFailure.withSeed(new AssertionError("CI=true and this test would be skipped ("
        + t.getMessage() + "): CI must run it, so install what it needs (see .ci/run)", t));
  }

  @Override
  Throwable map(Throwable t) {
    return judge(t);
  }
}
