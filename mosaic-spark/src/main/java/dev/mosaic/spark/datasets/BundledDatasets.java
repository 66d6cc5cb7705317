package dev.mosaic.spark.datasets;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The classic classification tables bundled on the classpath under {@code /datasets/} (iris,
 * wine, breast cancer; sources and licences in the README beside them). Each CSV has a header of
 * feature names and a final integer {@code class} column.
 */
public final class BundledDatasets {
  /** The bundled tables, smallest first. */
  public static final List<String> NAMES = List.of("iris", "wine", "breast_cancer");

  private BundledDatasets() {}

  /** Reads bundled table {@code name} (one of {@link #NAMES}). */
  public static LabeledTable load(String name) {
    if (!NAMES.contains(name)) {
      throw new IllegalArgumentException("no bundled dataset '" + name + "': expected one of "
          + NAMES);
    }
    String resource = "/datasets/" + name + ".csv";
    try (InputStream in = BundledDatasets.class.getResourceAsStream(resource)) {
      if (in == null) {
        throw new IllegalStateException("dataset " + resource + " is missing from the classpath");
      }
      return parse(name, new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8)));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + resource + ": " + e, e);
    }
  }

  static LabeledTable parse(String name, BufferedReader reader) throws IOException {
    String header = reader.readLine();
    if (header == null) {
      throw new IllegalArgumentException("dataset " + name + " is empty: expected a header row");
    }
    List<String> cols = Arrays.asList(header.split(","));
    if (cols.size() < 2 || !cols.get(cols.size() - 1).equals("class")) {
      throw new IllegalArgumentException("dataset " + name + ": the header must end with 'class',"
          + " got '" + header + "'");
    }
    int f = cols.size() - 1;
    List<float[]> rows = new ArrayList<>();
    List<Integer> labels = new ArrayList<>();
    int maxClass = -1;
    String line;
    int lineNo = 1;
    while ((line = reader.readLine()) != null) {
      lineNo++;
      if (line.isBlank()) {
        continue;
      }
      String[] v = line.split(",");
      if (v.length != f + 1) {
        throw new IllegalArgumentException("dataset " + name + " line " + lineNo + ": expected "
            + (f + 1) + " values, got " + v.length);
      }
      float[] row = new float[f];
      for (int j = 0; j < f; j++) {
        row[j] = Float.parseFloat(v[j]);
      }
      int c = Integer.parseInt(v[f].trim());
      if (c < 0) {
        throw new IllegalArgumentException("dataset " + name + " line " + lineNo
            + ": class must be a non-negative integer, got " + c);
      }
      maxClass = Math.max(maxClass, c);
      rows.add(row);
      labels.add(c);
    }
    float[] x = new float[rows.size() * f];
    int[] y = new int[rows.size()];
    for (int i = 0; i < rows.size(); i++) {
      System.arraycopy(rows.get(i), 0, x, i * f, f);
      y[i] = labels.get(i);
    }
    return new LabeledTable(name, List.copyOf(cols.subList(0, f)), x, y, maxClass + 1);
  }
}
