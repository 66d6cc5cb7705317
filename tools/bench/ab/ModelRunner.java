import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.model.*;
import java.util.*;
public class ModelRunner {
  /** seconds for one full logits pass over rows rows, 1 thread; returns {seconds, checksum} */
  public double[] run(int rows, int threads) {
    TabularConfig cfg = TabularConfig.defaults(8, 3);
    SyntheticTable t = SyntheticTable.generate(rows, 8, 3, 1234);
    int nTrain = (int) Math.round(rows * 0.8);
    float[] y = new float[nTrain];
    for (int i = 0; i < nTrain; i++) y[i] = t.labels()[i];
    try (NanoTabPfnModel m = NanoTabPfnModel.fromStateDict("seeded", cfg.seededWeights(), cfg.heads(), null, threads)) {
      long s = java.lang.management.ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime();
      Tensor l = m.logits(Tensor.of(t.values(), rows, 8), y);
      double sec = (java.lang.management.ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime() - s) / 1e9;
      double sum = 0; for (float v : l.data()) sum += v;
      return new double[] {sec, sum};
    }
  }
}
