#!/usr/bin/env python3
"""Writes the notebooks (unexecuted) from the cells below.

    python3 notebooks/tools/generate.py [NAME...]   # then run them: see notebooks/README.md

Plain json only (no nbformat needed). Executed versions replace the .ipynb files when
notebooks/tools/execute.sh runs them through the Mosaic kernel.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
NB_DIR = os.path.dirname(HERE)

# Every notebook starts with this cell: the project's jars, as built by `mvn -B package` (or the
# first `bin/mosaic` run). Paths are relative to the notebook's folder (the kernel's working dir);
# classpath.txt lists the runtime dependencies (Spark, JFreeChart, ...) as Maven resolved them.
CLASSPATH = ("%classpath ../mosaic-kernels/target/mosaic-kernels-0.1.0-SNAPSHOT.jar"
             " ../mosaic-spark/target/mosaic-spark-0.1.0-SNAPSHOT.jar"
             " @../mosaic-spark/target/classpath.txt")

SPARK = """import dev.mosaic.spark.runner.MosaicContext;
import dev.mosaic.spark.runner.SparkSessions;
import org.apache.spark.sql.SparkSession;

SparkSession spark = SparkSessions.getOrCreate("local[*]", "mosaic-notebook", java.util.Map.of());
MosaicContext ctx = MosaicContext.init(spark, 2);   // checks that 2 barrier tasks fit at once
spark.version()"""

NOTEBOOKS = {
    "01-quick-start": [
        ("md", """# Mosaic quick start

A `MultiAxisAttention` layer on a tensor in this JVM, then the same layer sharded over **2 Spark
barrier tasks** (`local[*]`) with **ring attention**, and a check that both agree.

The first cell puts the project's jars on the class path (build them first with
`mvn -B -DskipTests package` or one `bin/mosaic` run; see `notebooks/README.md`)."""),
        ("code", CLASSPATH),
        ("code", """import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.layers.MultiAxisAttention;
import java.util.Arrays;
import java.util.Random;

// (batch 2, rows 512, features 4, embed 32): attention along the rows (axis 1), 4 heads of 8.
Tensor x = Tensor.randn(new Random(7), 1f, 2, 512, 4, 32);
MultiAxisAttention attn = MultiAxisAttention.builder(32, 4, 1).causal(true).seed(11).threads(2).build();
Tensor local = attn.forward(x);
Arrays.toString(local.shape())"""),
        ("md", "## The same layer over Spark: the rows are split into 2 shards, K/V blocks travel around the ring"),
        ("code", SPARK),
        ("code", """import dev.mosaic.spark.runner.ShardedAttention;

long t0 = System.nanoTime();
Tensor sharded = ShardedAttention.run(ctx, x,
    new ShardedAttention.Spec(4, 1, true, Long.MAX_VALUE, attn.weights(), "ring"));
System.out.printf("ring over %d tasks: %.2f s%n", ctx.spSize(), (System.nanoTime() - t0) / 1e9);

double maxDiff = 0, maxAbs = 0;
for (int i = 0; i < local.size(); i++) {
  maxDiff = Math.max(maxDiff, Math.abs(local.data()[i] - sharded.data()[i]));
  maxAbs = Math.max(maxAbs, Math.abs(local.data()[i]));
}
check(Arrays.equals(local.shape(), sharded.shape()), "same shape");
check(maxDiff <= 1e-5 * Math.max(1, maxAbs), "ring agrees with local: max |diff| " + maxDiff);
String.format("max |local - ring| = %.2e (max |y| = %.3f)", maxDiff, maxAbs)"""),
        ("code", "attn.close();\nspark.stop();"),
    ],
    "02-tabular-model": [
        ("md", """# The tabular model over Spark

`TabularJob.synthetic` makes a table with Spark; `TabularJob.predict` runs the nanoTabPFN-style
model as **one barrier stage with 2 tasks** (ring attention across rows, every row attends to the
training rows only). The predictions come back as a DataFrame. The weights are seeded, not
trained: this shows the distributed computation, not accuracy."""),
        ("code", CLASSPATH),
        ("code", SPARK),
        ("code", """import dev.mosaic.spark.jobs.TabularJob;
import dev.mosaic.spark.model.TabularConfig;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.util.CollectionAccumulator;

long rows = 2000, nTrain = 1600;
int features = 8, classes = 3;
Dataset<Row> table = TabularJob.synthetic(spark, rows, features, classes, 42L, 2);
table.show(5);"""),
        ("code", """CollectionAccumulator<TabularJob.TaskReport> reports =
    spark.sparkContext().collectionAccumulator("task reports");
Dataset<Row> predictions = TabularJob.predict(ctx, table, rows, nTrain,
    TabularConfig.defaults(features, classes), reports).cache();
predictions.show(10);"""),
        ("code", """check(predictions.count() == rows, "one prediction per row");
check(predictions.filter("is_train").count() == nTrain, "training rows marked");
// class probabilities of every row sum to 1
double worst = 0;
for (Row r : predictions.select("probabilities").collectAsList()) {
  double sum = 0;
  for (Object p : r.getList(0)) sum += (Float) p;
  worst = Math.max(worst, Math.abs(sum - 1));
}
check(worst < 1e-4, "probabilities sum to 1 (worst " + worst + ")");
predictions.groupBy("prediction").count().orderBy("prediction").show();
reports.value().forEach(r -> System.out.printf("task %d: %d rows from %d, %.2f s%n",
    r.rank(), r.rows(), r.firstRow(), r.seconds()));"""),
        ("code", "spark.stop();"),
    ],
    "03-choosing-a-strategy": [
        ("md", """# Choosing a strategy

`Planner.candidates` gives, for one attention layer (fp32, batch 1), every strategy and mesh
shape that fits the devices: memory per device and bytes each device sends per layer. These
charts show how they grow with the sequence length and shrink with the device count (no Spark
needed: the planner is pure arithmetic, the same formulas the strategies' `bytesSent` use)."""),
        ("code", CLASSPATH),
        ("code", """import dev.mosaic.spark.charts.Charts;
import dev.mosaic.spark.plan.Planner;
import java.util.*;

// 8 heads x 64, 4 devices on 2 nodes, 80 GiB each: every candidate at 150k tokens.
Planner.Problem pr = new Planner.Problem(150_000, 8, 64, 4, 2, 80L << 30, false);
List<Planner.Candidate> cs = Planner.candidates(pr);
for (Planner.Candidate c : cs) {
  System.out.printf("%-34s memory %8.1f MiB  sent %8.1f MiB  across nodes %8.1f MiB%n", c.spec(),
      c.memory() / 1048576.0, c.bytesSent() / 1048576.0, c.interNodeBytes() / 1048576.0);
}
System.out.println("recommended: " + Planner.recommend(pr).spec());
Charts.plan(pr, cs)"""),
        ("md", "## Memory per device as the sequence grows (4 devices, 1 node)"),
        ("code", """Map<String, List<double[]>> mem = new LinkedHashMap<>(), sent = new LinkedHashMap<>();
for (long n = 8_192; n <= 1_048_576; n *= 2) {
  for (Planner.Candidate c : Planner.candidates(new Planner.Problem(n, 8, 64, 4, 1, 80L << 30, false))) {
    mem.computeIfAbsent(c.spec().toString(), k -> new ArrayList<>()).add(new double[] {n, c.memory() / 1048576.0});
    sent.computeIfAbsent(c.spec().toString(), k -> new ArrayList<>()).add(new double[] {n, c.bytesSent() / 1048576.0});
  }
}
Map<String, double[][]> memSeries = new LinkedHashMap<>(), sentSeries = new LinkedHashMap<>();
mem.forEach((k, v) -> memSeries.put(k, v.toArray(new double[0][])));
sent.forEach((k, v) -> sentSeries.put(k, v.toArray(new double[0][])));
display(Charts.lines("Memory per device, 4 devices", "tokens", "MiB", memSeries, true, true));
Charts.lines("Bytes sent per device per layer, 4 devices", "tokens", "MiB", sentSeries, true, true)"""),
        ("md", "## Ring: memory and traffic per device as devices are added (262,144 tokens)"),
        ("code", """Map<String, Double> ringMem = new LinkedHashMap<>(), ringSent = new LinkedHashMap<>();
List<Long> ringMemory = new ArrayList<>();
for (int p : new int[] {1, 2, 4, 8, 16, 32}) {
  Planner.Candidate ring = Planner.candidates(new Planner.Problem(262_144, 8, 64, p, 1, 80L << 30, false))
      .stream().filter(c -> c.spec().backend().equals(p == 1 ? "local" : "ring")).findFirst().orElseThrow();
  String devices = p + (p == 1 ? " device" : " devices");
  ringMem.put(devices, ring.memory() / 1048576.0);
  ringSent.put(devices, ring.bytesSent() / 1048576.0);
  if (p > 1) ringMemory.add(ring.memory());
}
check(ringMemory.get(ringMemory.size() - 1) < ringMemory.get(0), "32 devices need less memory each than 2");
Map<String, Map<String, Double>> bars = new LinkedHashMap<>();
bars.put("memory per device (MiB)", ringMem);
bars.put("sent per device per layer (MiB)", ringSent);
Charts.bars("Ring attention, 262,144 tokens, 8 heads x 64", "devices", "MiB", bars)"""),
    ],
    "04-performance": [
        ("md", """# Performance

A small run of the CPU flash kernel benchmark (`KernelBenchmark`, the code behind
`bin/mosaic bench kernel`) on the machine that runs this notebook, after a warm-up run, with that
machine's measured FMA peak drawn beside it; then the numbers measured for
[`docs/performance.md`](../docs/performance.md) as a chart. The small sizes keep this notebook
fast; `bin/mosaic bench kernel --plot kernel.png` runs the full sweep. The saved outputs are from
the machine that last executed the notebook (`notebooks/tools/execute.sh`). On a machine shared
with other work both the kernel's numbers and the peak drop with the load: read the kernel
against the peak of the same run, not against another machine's numbers."""),
        ("code", CLASSPATH),
        ("code", """import dev.mosaic.kernels.bench.KernelBenchmark;
import dev.mosaic.kernels.simd.PeakFlops;
import dev.mosaic.spark.charts.Charts;
import java.util.*;

// Warm-up: a throwaway run first, so the timed one sees JIT-compiled code at every size.
new KernelBenchmark(4, 64, 2, 0.3).run(new int[] {256, 512, 1024}, new java.io.PrintStream(java.io.OutputStream.nullOutputStream()));
double peak = PeakFlops.get().measure(2, 1500) / 1e9;   // this machine's FMA ceiling, 2 threads
System.out.printf("FMA peak on 2 threads (measured now): %.1f GFLOP/s%n", peak);
List<KernelBenchmark.Row> rows = new KernelBenchmark(4, 64, 2, 0.3).run(new int[] {256, 512, 1024, 2048}, System.out);
check(rows.size() == 8 && rows.stream().allMatch(r -> r.gflops() > 0), "8 timed configurations");
KernelBenchmark.Row best = rows.stream().max(Comparator.comparingDouble(KernelBenchmark.Row::gflops)).orElseThrow();
System.out.printf("best: %.1f GFLOP/s (n=%d, causal=%s) = %.0f%% of the FMA peak measured in this run%n",
    best.gflops(), best.n(), best.causal(), 100 * best.gflops() / peak);
var live = Charts.kernel(rows, peak);
live.setTitle("CPU flash kernel on this machine, now (4 heads x 64, 2 threads)");
live"""),
        ("md", "## From docs/performance.md (8 heads x 64, 2 threads)"),
        ("code", """import java.nio.file.*;

List<KernelBenchmark.Row> doc = new ArrayList<>();
boolean inKernelTable = false;
double docPeak = Double.NaN;   // the FMA peak measured in the same run as the table
for (String line : Files.readAllLines(Path.of("../docs/performance.md"))) {
  if (line.startsWith("| n | causal | median time | GFLOP/s")) { inKernelTable = true; continue; }
  java.util.regex.Matcher m = java.util.regex.Pattern.compile("^FMA peak in that run: ([0-9.]+) GFLOP/s").matcher(line);
  if (!doc.isEmpty() && m.find()) { docPeak = Double.parseDouble(m.group(1)); break; }
  if (inKernelTable && !line.startsWith("|")) { inKernelTable = false; continue; }
  if (!inKernelTable || line.startsWith("|---")) continue;
  String[] c = line.split("\\\\|");
  doc.add(new KernelBenchmark.Row(Integer.parseInt(c[1].trim()), c[2].trim().equals("yes"),
      Double.parseDouble(c[3].trim().replace(" s", "")), Double.parseDouble(c[4].trim()), 0, 1));
}
check(!doc.isEmpty(), "kernel table found in docs/performance.md");
doc.forEach(r -> System.out.printf("n=%-6d causal=%-5s %7.1f GFLOP/s%n", r.n(), r.causal(), r.gflops()));
System.out.println("FMA peak in that run: " + docPeak + " GFLOP/s (2 threads)");
var docChart = Double.isNaN(docPeak) ? Charts.kernel(doc) : Charts.kernel(doc, docPeak);
docChart.setTitle("CPU flash kernel in docs/performance.md (8 heads x 64, 2 threads)");
docChart"""),
    ],
}


def lines(src):
    parts = src.split("\n")
    return [p + "\n" for p in parts[:-1]] + [parts[-1]]


def notebook(cells):
    out = []
    for i, (kind, src) in enumerate(cells):
        if kind == "md":
            out.append({"cell_type": "markdown", "id": "cell-%d" % i, "metadata": {},
                        "source": lines(src)})
        else:
            out.append({"cell_type": "code", "execution_count": None, "id": "cell-%d" % i,
                        "metadata": {}, "outputs": [], "source": lines(src)})
    return {"cells": out, "metadata": {
        "kernelspec": {"display_name": "Java (Mosaic)", "language": "java", "name": "mosaic-java"},
        "language_info": {"name": "java", "file_extension": ".jshell",
                          "mimetype": "text/x-java-source", "codemirror_mode": "java"}},
        "nbformat": 4, "nbformat_minor": 5}


if __name__ == "__main__":
    # python3 notebooks/tools/generate.py [NAME...]: only the named notebooks (default: all).
    names = sys.argv[1:] or list(NOTEBOOKS)
    for name in names:
        with open(os.path.join(NB_DIR, name + ".ipynb"), "w") as f:
            json.dump(notebook(NOTEBOOKS[name]), f, indent=1)
            f.write("\n")
        print("wrote", name)
