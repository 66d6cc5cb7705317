package dev.mosaic.jupyter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Executes every committed notebook in {@code notebooks/} ({@link #NOTEBOOK}) headless through
 * this kernel with {@code jupyter nbconvert --to notebook --execute}: a cell that fails (a
 * compile error, an exception, a notebook's own {@code check}) fails the test. The kernel is installed into a
 * temporary Jupyter path, so the user's kernels are not touched. Skipped when {@code jupyter
 * nbconvert} is not installed (Debian: jupyter-nbconvert python3-nbclient jupyter-client
 * jupyter-core python3-ipykernel; {@code .ci/run} installs them), and failed instead under
 * {@code CI=true}. What jupyter and the kernel print goes to
 * {@code target/notebooks-executed/<notebook>.log}.
 */
class NotebooksIT {
  private static final Path HOME = Path.of(System.getProperty("mosaic.home", "..")).toAbsolutePath()
      .normalize();
  private static final Path OUT = Path.of(System.getProperty("mosaic.notebookOut",
      "target/notebooks-executed")).toAbsolutePath();
  /**
   * The committed notebooks, {@code NN-name.ipynb}: not what {@code nbconvert} writes beside them
   * ({@code NN-name.nbconvert.ipynb}) nor anything else a user leaves there.
   */
  static final Pattern NOTEBOOK = Pattern.compile("\\d\\d-[a-z0-9-]+\\.ipynb");

  private static Path jupyterPath;

  @BeforeAll
  static void installKernel() throws Exception {
    Files.createDirectories(OUT);
    Assumptions.assumeTrue(run(List.of("jupyter", "nbconvert", "--version"), HOME, 60,
        OUT.resolve("nbconvert-version.log")) == 0,
        "jupyter nbconvert is not installed: notebooks not executed (apt-get install"
            + " --no-install-recommends jupyter-nbconvert python3-nbclient jupyter-client"
            + " jupyter-core python3-ipykernel)");
    String cp = KernelInstaller.classpath(System.getProperty("mosaic.kernelClasspath"),
        Path.of(System.getProperty("mosaic.kernelClasspathFile")));
    Path prefix = Files.createDirectories(OUT.resolve("jupyter"));
    jupyterPath = prefix.resolve("share/jupyter");
    Path json = KernelInstaller.install(jupyterPath.resolve("kernels/mosaic-java"),
        Path.of(System.getProperty("java.home"), "bin", "java").toString(), HOME, cp,
        "Java (Mosaic)");
    String text = Files.readString(json);
    assertTrue(text.contains("--add-opens=jdk.jshell/jdk.jshell=ALL-UNNAMED"), text);
    assertTrue(text.contains("--add-modules=jdk.incubator.vector"), text);
  }

  @TestFactory
  Stream<DynamicTest> everyNotebookRunsWithoutError() throws IOException {
    List<Path> notebooks;
    try (Stream<Path> s = Files.list(HOME.resolve("notebooks"))) {
      notebooks = s.filter(p -> NOTEBOOK.matcher(p.getFileName().toString()).matches())
          .sorted().toList();
    }
    assertFalse(notebooks.isEmpty(), "no notebooks in " + HOME.resolve("notebooks"));
    return notebooks.stream().map(nb -> DynamicTest.dynamicTest(nb.getFileName().toString(), () -> {
      long t0 = System.nanoTime();
      Path log = OUT.resolve(nb.getFileName() + ".log");
      int rc = run(List.of("jupyter", "nbconvert", "--to", "notebook", "--execute",
          "--ExecutePreprocessor.timeout=300", "--output-dir", OUT.toString(), nb.toString()),
          nb.getParent(), 600, log);
      System.out.printf("%s: exit %d in %.1f s%n", nb.getFileName(), rc,
          (System.nanoTime() - t0) / 1e9);
      assertEquals(0, rc, () -> nb + " failed; the end of " + log + ":\n" + tail(log, 40));
      String executed = Files.readString(OUT.resolve(nb.getFileName()));
      assertFalse(executed.contains("\"output_type\": \"error\""), "error output in " + nb);
    }));
  }

  /** The last {@code n} lines of a log, or why there are none. */
  private static String tail(Path log, int n) {
    try {
      List<String> lines = Files.readAllLines(log);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - n), lines.size()));
    } catch (IOException e) {
      return "(unreadable: " + e + ")";
    }
  }

  /** Runs {@code cmd} with its output (jupyter's and the kernel's) into {@code log}. */
  private static int run(List<String> cmd, Path dir, long timeoutSeconds, Path log)
      throws Exception {
    // Not inheritIO: the fork's stdout is surefire's channel, and a green build stays quiet.
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile())
        .redirectErrorStream(true).redirectOutput(log.toFile());
    if (jupyterPath != null) {
      pb.environment().put("JUPYTER_PATH", jupyterPath.toString());
    }
    Process p;
    try {
      p = pb.start();
    } catch (IOException e) {
      return -1; // not installed
    }
    if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      return -2;
    }
    return p.exitValue();
  }
}
