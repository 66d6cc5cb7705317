import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/**
 * What .ci/run prints after the tests: totals over every module's surefire and failsafe reports,
 * each skipped test class with its reason, and the end of each failed class's output. Run as
 * {@code java .ci/TestReport.java [root]} (Java's single-file launcher, nothing to build).
 */
public final class TestReport {
  private TestReport() {}

  /** How much of a failed class's output to show. */
  static final int OUTPUT_LINES = 150;

  /** One test case from a TEST-*.xml report. */
  record Case(String className, String name, String outcome, String message) {}

  public static void main(String[] args) throws Exception {
    Path root = Path.of(args.length > 0 ? args[0] : ".");
    List<Path> reports = new ArrayList<>();
    try (Stream<Path> modules = Files.list(root)) {
      for (Path m : modules.sorted().toList()) {
        for (String kind : new String[] {"surefire-reports", "failsafe-reports"}) {
          Path dir = m.resolve("target").resolve(kind);
          if (Files.isDirectory(dir)) {
            try (Stream<Path> files = Files.list(dir)) {
              files.filter(f -> f.getFileName().toString().matches("TEST-.*\\.xml"))
                  .sorted().forEach(reports::add);
            }
          }
        }
      }
    }
    List<Case> cases = new ArrayList<>();
    for (Path r : reports) {
      cases.addAll(read(r));
    }
    long failed = cases.stream().filter(c -> !c.outcome().equals("passed")
        && !c.outcome().equals("skipped")).count();
    long skipped = cases.stream().filter(c -> c.outcome().equals("skipped")).count();
    long passed = cases.size() - failed - skipped;

    // Skips grouped by class and reason: "CudaFlashAttentionGpuTest (13): no usable GPU: ...".
    Map<String, Integer> skips = new TreeMap<>();
    for (Case c : cases) {
      if (c.outcome().equals("skipped")) {
        skips.merge(simpleName(c.className()) + ": " + oneLine(c.message()), 1, Integer::sum);
      }
    }
    System.out.println("ci: " + skipped + " skipped" + (skipped == 0 ? "" : ":"));
    skips.forEach((what, n) -> {
      int colon = what.indexOf(": ");
      System.out.println("ci:   " + what.substring(0, colon) + " (" + n + "): "
          + what.substring(colon + 2));
    });
    for (String cls : cases.stream().filter(c -> !c.outcome().equals("passed")
        && !c.outcome().equals("skipped")).map(Case::className).distinct().toList()) {
      printOutput(root, cls);
    }
    if (reports.isEmpty()) {
      System.out.println("ci: no test reports under " + root.toAbsolutePath() + "/*/target");
    }
    // The plain closing line: totals over every module, unit and integration tests together.
    System.out.println("ci: " + passed + " passed, " + failed + " failed, " + skipped + " skipped");
  }

  static List<Case> read(Path report) throws Exception {
    DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
    f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
    Element suite = f.newDocumentBuilder().parse(report.toFile()).getDocumentElement();
    List<Case> out = new ArrayList<>();
    NodeList tcs = suite.getElementsByTagName("testcase");
    for (int i = 0; i < tcs.getLength(); i++) {
      Element tc = (Element) tcs.item(i);
      String outcome = "passed";
      String message = "";
      for (String kind : new String[] {"skipped", "failure", "error", "flakyFailure"}) {
        NodeList n = tc.getElementsByTagName(kind);
        if (n.getLength() > 0) {
          Element e = (Element) n.item(0);
          outcome = kind.equals("flakyFailure") ? "passed" : kind;
          message = reason(e);
          break;
        }
      }
      String cls = tc.getAttribute("classname");
      out.add(new Case(cls.isEmpty() ? suite.getAttribute("name") : cls, tc.getAttribute("name"),
          outcome, message));
    }
    return out;
  }

  /** The message, or (surefire leaves it out for skips) the first line of the stack trace. */
  static String reason(Element e) {
    String m = e.getAttribute("message");
    if (m.isBlank()) {
      m = e.getTextContent().strip().lines().findFirst().orElse("")
          .replaceFirst("^[\\w.$]+(Exception|Error): ", "");
    }
    return m.replaceFirst("^Assumption failed: ", "");
  }

  /** The end of a failed class's output file (its prints, Spark's log), if it wrote one. */
  static void printOutput(Path root, String cls) throws IOException {
    List<Path> files;
    try (Stream<Path> found = Files.find(root, 4, (p, a) ->
        p.getFileName().toString().equals(cls + "-output.txt"))) {
      files = found.sorted().toList();
    }
    if (files.isEmpty()) {
      System.out.println("ci: failed: " + cls + " (it printed nothing)");
      return;
    }
    for (Path f : files) {
      List<String> lines = Files.readAllLines(f);
      int from = Math.max(0, lines.size() - OUTPUT_LINES);
      System.out.println("ci: failed: " + cls + "; " + (from == 0 ? "its output" : "the last "
          + OUTPUT_LINES + " of " + lines.size() + " lines of its output") + ", " + f + ":");
      lines.subList(from, lines.size()).forEach(l -> System.out.println("  | " + l));
    }
  }

  static String simpleName(String cls) {
    return cls.substring(cls.lastIndexOf('.') + 1);
  }

  static String oneLine(String s) {
    String line = s == null ? "" : s.strip().replaceAll("\\s+", " ");
    return line.length() > 160 ? line.substring(0, 157) + "..." : line;
  }
}
