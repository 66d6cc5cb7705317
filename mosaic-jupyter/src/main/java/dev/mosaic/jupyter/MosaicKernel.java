package dev.mosaic.jupyter;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import jdk.jshell.Diag;
import jdk.jshell.EvalException;
import jdk.jshell.JShell;
import jdk.jshell.JShellException;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;
import jdk.jshell.UnresolvedReferenceException;
import org.dflib.jjava.jupyter.channels.JupyterConnection;
import org.dflib.jjava.jupyter.kernel.BaseKernel;
import org.dflib.jjava.jupyter.kernel.BaseKernelBuilder;
import org.dflib.jjava.jupyter.kernel.KernelConnectionProperties;
import org.dflib.jjava.jupyter.kernel.LanguageInfo;
import org.dflib.jjava.jupyter.kernel.ReplacementOptions;
import org.dflib.jjava.jupyter.kernel.display.DisplayData;
import org.dflib.jjava.jupyter.kernel.magic.MagicParser;
import org.dflib.jjava.jupyter.kernel.util.PathsHandler;

/**
 * Mosaic's Jupyter kernel: Java through {@code jdk.jshell} in this JVM (local execution, so a
 * cell's value is a real object and Spark runs in-process), on JJava's protocol library. Line
 * magics {@code %jars} and {@code %classpath} add jars, globs, directories and {@code @file}
 * listings (a class path file such as {@code mosaic-spark/target/classpath.txt}) to the class
 * path. A value that is an image or a chart is shown as {@code image/png}; see {@link Displays}.
 */
public final class MosaicKernel extends BaseKernel {
  static final String VERSION = "0.1.0";

  private final CapturingExecutionControl.Provider provider = new CapturingExecutionControl.Provider();
  private final JShell shell;
  private final Path workDir;
  private final Set<String> added = new LinkedHashSet<>();

  private MosaicKernel(Builder b) {
    super(b.name(), VERSION,
        new LanguageInfo("java", Runtime.version().toString(), "text/x-java-source", ".jshell",
            "java", "java", "script"),
        List.of(), null, b.io(), b.comms(), b.renderer(),
        new MagicParser("^\\s*%", "^\\s*%%", b.transpiler()), b.magics(), false, b.styler());
    this.workDir = Path.of("").toAbsolutePath();
    this.shell = JShell.builder()
        .executionEngine(provider, java.util.Map.of())
        .out(System.out).err(System.err)
        .build();
    // The kernel's own classes (Notebook's helpers) for the compiler; the loader sees them through
    // its parent, the application class loader.
    for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
      if (!entry.isBlank()) {
        shell.addToClasspath(entry);
      }
    }
    evalSilently("import static dev.mosaic.jupyter.Notebook.*;");
    Notebook.attach(this);
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Builds the kernel with JJava's defaults for IO, comms and rendering. */
  public static final class Builder extends BaseKernelBuilder<Builder, MosaicKernel> {
    Builder() {
      name("Mosaic Java");
      lineMagic("jars", (MosaicKernel k, List<String> args) -> k.addClasspath(args, true));
      lineMagic("classpath", (MosaicKernel k, List<String> args) -> k.addClasspath(args, false));
    }

    @Override
    public MosaicKernel build() {
      return new MosaicKernel(this);
    }

    String name() {
      return buildName();
    }

    org.dflib.jjava.jupyter.kernel.JupyterIO io() {
      return buildJupyterIO(buildJupyterIOEncoding());
    }

    org.dflib.jjava.jupyter.kernel.comm.CommManager comms() {
      return buildCommManager();
    }

    org.dflib.jjava.jupyter.kernel.display.Renderer renderer() {
      return buildRenderer();
    }

    org.dflib.jjava.jupyter.kernel.magic.MagicTranspiler transpiler() {
      return buildMagicTranspiler();
    }

    org.dflib.jjava.jupyter.kernel.magic.MagicsRegistry magics() {
      return buildMagicsRegistry();
    }

    org.dflib.jjava.jupyter.kernel.util.StringStyler styler() {
      return buildErrorStyler();
    }
  }

  /** A cell that failed: compile diagnostics, or the user code's exception. */
  public static final class CellException extends RuntimeException {
    CellException(String message) {
      super(message, null, false, true);
    }
  }

  /** Runs {@code java ... MosaicKernel <connection file>}, as kernel.json says. */
  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: MosaicKernel CONNECTION_FILE");
      System.exit(2);
    }
    System.setProperty("java.awt.headless", "true");
    KernelConnectionProperties props =
        KernelConnectionProperties.parse(Files.readString(Path.of(args[0])));
    JupyterConnection connection = new JupyterConnection(props);
    MosaicKernel kernel = builder().build();
    kernel.becomeHandlerForConnection(connection);
    connection.connect();
    connection.waitUntilClose();
    kernel.shell.close();
    // Spark and other libraries leave non-daemon threads behind.
    System.exit(0);
  }

  // ---- evaluation

  @Override
  public DisplayData eval(String code) {
    return Displays.of(evalRaw(code));
  }

  @Override
  public Object evalRaw(String code) {
    StringBuilder java = new StringBuilder();
    for (String line : code.split("\n", -1)) {
      String t = line.strip();
      if (t.startsWith("%") && !t.startsWith("%%")) {
        runLineMagic(t.substring(1));
        java.append('\n'); // keep line numbers of the Java part
      } else if (t.startsWith("%%")) {
        throw new CellException("cell magics are not supported: " + t);
      } else {
        java.append(line).append('\n');
      }
    }
    return evalJava(java.toString());
  }

  private void runLineMagic(String text) {
    List<String> words = splitArgs(text);
    if (words.isEmpty()) {
      throw new CellException("empty magic '%'");
    }
    String name = words.get(0);
    if (!magicsRegistry.getLineMagicNames().contains(name)) {
      throw new CellException("unknown magic %" + name + "; this kernel has %"
          + String.join(", %", magicsRegistry.getLineMagicNames()));
    }
    try {
      magicsRegistry.evalLineMagic(this, name, words.subList(1, words.size()));
    } catch (RuntimeException e) {
      throw e;
    } catch (Exception e) {
      throw new CellException("%" + name + " failed: " + e);
    }
  }

  /** Words split on blanks; double quotes keep blanks inside a word. */
  static List<String> splitArgs(String text) {
    List<String> out = new ArrayList<>();
    StringBuilder cur = new StringBuilder();
    boolean quoted = false;
    boolean any = false;
    for (char c : text.toCharArray()) {
      if (c == '"') {
        quoted = !quoted;
        any = true;
      } else if (Character.isWhitespace(c) && !quoted) {
        if (any) {
          out.add(cur.toString());
          cur.setLength(0);
          any = false;
        }
      } else {
        cur.append(c);
        any = true;
      }
    }
    if (any) {
      out.add(cur.toString());
    }
    return out;
  }

  private Object evalJava(String code) {
    SourceCodeAnalysis sca = shell.sourceCodeAnalysis();
    String rest = code;
    Object last = null;
    while (!rest.isBlank()) {
      SourceCodeAnalysis.CompletionInfo info = sca.analyzeCompletion(rest);
      String source;
      switch (info.completeness()) {
        case EMPTY -> {
          return last;
        }
        case COMPLETE, COMPLETE_WITH_SEMI -> {
          source = info.source();
          rest = info.remaining();
        }
        case DEFINITELY_INCOMPLETE, CONSIDERED_INCOMPLETE ->
          throw new CellException("incomplete Java at the end of the cell:\n" + rest.strip());
        default -> {
          source = rest; // UNKNOWN: let the compiler say what is wrong
          rest = "";
        }
      }
      last = evalSnippet(source);
    }
    return last;
  }

  private Object evalSnippet(String source) {
    CapturingExecutionControl control = provider.control();
    if (control != null) {
      control.takeLastValue();
    }
    List<SnippetEvent> events = shell.eval(source);
    Object value = null;
    for (SnippetEvent e : events) {
      if (e.causeSnippet() != null) {
        continue; // a dependent snippet updated; not this source's own result
      }
      Snippet s = e.snippet();
      if (e.status() == Snippet.Status.REJECTED) {
        throw new CellException(diagnostics(s, source));
      }
      if (e.exception() != null) {
        throw failure(e.exception());
      }
      if (e.status() == Snippet.Status.RECOVERABLE_DEFINED
          || e.status() == Snippet.Status.RECOVERABLE_NOT_DEFINED) {
        String missing = shell.unresolvedDependencies((jdk.jshell.DeclarationSnippet) s)
            .collect(Collectors.joining(", "));
        throw new CellException("cannot resolve: " + missing + "\n" + source.strip());
      }
      if (isValue(s) && control != null) {
        value = control.takeLastValue();
      }
    }
    return value;
  }

  private static boolean isValue(Snippet s) {
    return s.kind() == Snippet.Kind.EXPRESSION
        || s.subKind() == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND
        || s.subKind() == Snippet.SubKind.VAR_VALUE_SUBKIND;
  }

  private String diagnostics(Snippet s, String source) {
    String msgs = shell.diagnostics(s).map(d -> describe(d, source))
        .collect(Collectors.joining("\n"));
    return msgs.isEmpty() ? "rejected: " + source.strip() : msgs;
  }

  private static String describe(Diag d, String source) {
    String msg = d.getMessage(null);
    long pos = d.getStartPosition();
    if (pos < 0 || pos > source.length()) {
      return msg;
    }
    int lineStart = source.lastIndexOf('\n', (int) Math.max(0, pos - 1)) + 1;
    int lineEnd = source.indexOf('\n', (int) pos);
    String line = source.substring(lineStart, lineEnd < 0 ? source.length() : lineEnd);
    return msg + "\n    " + line + "\n    " + " ".repeat((int) pos - lineStart) + "^";
  }

  private static CellException failure(JShellException ex) {
    String text;
    if (ex instanceof EvalException ee) {
      text = ee.getExceptionClassName() + (ee.getMessage() == null ? "" : ": " + ee.getMessage());
    } else if (ex instanceof UnresolvedReferenceException ure) {
      text = "unresolved reference in " + ure.getSnippet().source().strip();
    } else {
      text = ex.toString();
    }
    CellException c = new CellException(text);
    c.setStackTrace(ex.getStackTrace());
    if (ex.getCause() instanceof JShellException cause) {
      c.initCause(failure(cause));
    }
    return c;
  }

  private void evalSilently(String code) {
    for (SnippetEvent e : shell.eval(code)) {
      if (e.status() == Snippet.Status.REJECTED) {
        throw new IllegalStateException("kernel start-up snippet rejected: " + code);
      }
    }
  }

  // ---- %jars and %classpath

  /**
   * Adds each argument's paths to the class path: a path, a glob ({@code target/*.jar}), several
   * joined with the path separator, or {@code @FILE} for the entries listed in FILE (path
   * separator or line separated, as Maven's {@code dependency:build-classpath} writes them).
   * Relative paths are resolved against the notebook's directory (the kernel's working
   * directory). {@code %jars} keeps jar files and expands a directory to the jars in it.
   */
  List<String> addClasspath(List<String> args, boolean jarsOnly) throws IOException {
    if (args.isEmpty()) {
      throw new CellException("%" + (jarsOnly ? "jars" : "classpath") + " needs at least one path");
    }
    List<Path> paths = resolve(args, workDir, jarsOnly);
    List<String> fresh = new ArrayList<>();
    for (Path p : paths) {
      String s = p.toString();
      if (added.add(s)) {
        shell.addToClasspath(s);
        fresh.add(s);
      }
    }
    return fresh;
  }

  static List<Path> resolve(List<String> args, Path base, boolean jarsOnly) throws IOException {
    List<Path> out = new ArrayList<>();
    for (String arg : args) {
      List<String> entries = new ArrayList<>();
      if (arg.startsWith("@")) {
        Path list = base.resolve(arg.substring(1)).normalize();
        if (!Files.isRegularFile(list)) {
          throw new CellException("class path file " + list + " does not exist; build the project"
              + " first (mvn -B -DskipTests package, or bin/mosaic once)");
        }
        for (String e : Files.readString(list).split("[" + File.pathSeparator + "\\r\\n]+")) {
          if (!e.isBlank()) {
            entries.add(e.strip());
          }
        }
      } else {
        entries.addAll(PathsHandler.split(arg));
      }
      for (String entry : entries) {
        Path p = Path.of(entry);
        String resolved = p.isAbsolute() ? entry : base.resolve(entry).normalize().toString();
        List<Path> matches;
        try {
          matches = PathsHandler.resolveGlobs(resolved);
        } catch (RuntimeException e) {
          matches = List.of(); // a folder on the way does not exist
        }
        if (matches.isEmpty()) {
          throw new CellException("nothing matches " + resolved + " (" + entry + " relative to "
              + base + "); build the project first (mvn -B -DskipTests package, or bin/mosaic)");
        }
        for (Path m : matches) {
          if (jarsOnly && Files.isDirectory(m)) {
            try (Stream<Path> s = Files.list(m)) {
              s.filter(MosaicKernel::isJar).sorted().forEach(out::add);
            }
          } else if (!jarsOnly || isJar(m)) {
            out.add(m.toAbsolutePath().normalize());
          }
        }
      }
    }
    return out;
  }

  private static boolean isJar(Path p) {
    return Files.isRegularFile(p) && p.getFileName().toString().endsWith(".jar");
  }

  // ---- the rest of the protocol

  @Override
  public DisplayData inspect(String code, int at, boolean extraDetail) {
    return null;
  }

  @Override
  public ReplacementOptions complete(String code, int at) {
    int[] anchor = new int[1];
    List<String> options = shell.sourceCodeAnalysis().completionSuggestions(code, at, anchor)
        .stream().map(SourceCodeAnalysis.Suggestion::continuation).distinct().toList();
    return options.isEmpty() ? null : new ReplacementOptions(options, anchor[0], at);
  }

  @Override
  public String isComplete(String code) {
    if (code.strip().startsWith("%")) {
      return IS_COMPLETE_YES;
    }
    return switch (shell.sourceCodeAnalysis().analyzeCompletion(code).completeness()) {
      case COMPLETE, COMPLETE_WITH_SEMI, EMPTY -> IS_COMPLETE_YES;
      case DEFINITELY_INCOMPLETE, CONSIDERED_INCOMPLETE -> "";
      default -> IS_COMPLETE_BAD;
    };
  }

  @Override
  public void onShutdown(boolean restart) {
    shell.close();
  }
}
