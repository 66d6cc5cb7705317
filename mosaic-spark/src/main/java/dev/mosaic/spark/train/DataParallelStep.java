package dev.mosaic.spark.train;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.spark.comm.Communicator;
import dev.mosaic.spark.comm.GradientAllReduce;
import dev.mosaic.spark.model.NanoTabPfnBackward;
import dev.mosaic.spark.model.NanoTabPfnModel;
import dev.mosaic.spark.prior.Prior;
import dev.mosaic.spark.prior.PriorDataset;
import dev.mosaic.spark.prior.PriorSizes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * One optimizer step of data-parallel pretraining, on one rank of a barrier stage:
 *
 * <ol>
 *   <li>the rank draws its tables of the batch from the prior (table {@code slot} of step
 *       {@code s} is {@code prior.sample(sizes(s), s, slot)}, so the batch does not depend on the
 *       number of ranks; which rank draws which slot is balanced by estimated cost,
 *       {@link #slotsOf});
 *   <li>runs forward and backward on each (nanoTabPFN's test-row cross-entropy) and sums the
 *       gradients;
 *   <li>all-reduces the sums (and the loss) so that every rank holds the batch's mean gradient;
 *   <li>clips its global norm and applies AdamW with the schedule's learning rate.
 * </ol>
 *
 * Every rank ends with bit-identical weights and optimizer state: the all-reduce gives every rank
 * the same sum, and the clipping and update are deterministic.
 */
final class DataParallelStep {
  private static final String LOSS = "~loss"; // sorts after every parameter name

  private DataParallelStep() {}

  static StepRecord run(PretrainSettings s, Prior prior, long step, Map<String, Tensor> params,
      AdamW optimizer, Communicator comm, int threads) {
    return run(s, Tables.of(prior, s), step, params, optimizer, comm, threads);
  }

  /** As above, with the batch's tables from {@code tables} (the PyTorch oracle's fixed ones). */
  static StepRecord run(PretrainSettings s, Tables tables, long step, Map<String, Tensor> params,
      AdamW optimizer, Communicator comm, int threads) {
    long t0 = System.nanoTime();
    int rank = comm.rank();
    int size = comm.size();
    Map<String, Tensor> sum = new TreeMap<>();
    for (Map.Entry<String, Tensor> e : params.entrySet()) {
      sum.put(e.getKey(), Tensor.zeros(e.getValue().shape()));
    }
    double lossSum = 0;
    long cells = 0;
    // The model reads the weights as they are now; the update below changes them in place, so a
    // fresh model (cheap next to the step) is built each step rather than trusting no layer to
    // have kept a derived copy.
    try (NanoTabPfnModel model = NanoTabPfnModel.fromStateDict("pretraining step " + step,
            params, s.shape().numHeads(), null, threads);
        NanoTabPfnBackward backward = new NanoTabPfnBackward(model, threads)) {
      for (int slot : slotsOf(rank, size, tables, step, s.batch())) {
        PriorDataset table = tables.table(step, slot);
        float[] testLabels = table.yTest();
        int[] yTest = new int[testLabels.length];
        for (int i = 0; i < yTest.length; i++) {
          yTest[i] = (int) testLabels[i];
        }
        NanoTabPfnBackward.Result r =
            backward.lossAndGradients(table.xTensor(), table.yTrain(), yTest);
        lossSum += r.loss();
        for (Map.Entry<String, Tensor> g : r.gradients().entrySet()) {
          float[] acc = sum.get(g.getKey()).data();
          float[] d = g.getValue().data();
          for (int i = 0; i < acc.length; i++) {
            acc[i] += d[i];
          }
        }
        cells += (long) table.rows() * (table.features() + 1);
      }
    }
    sum.put(LOSS, Tensor.of(new float[] {(float) lossSum, cells}, 2));
    GradientAllReduce.allReduce(comm, sum, GradientAllReduce.Mode.SUM);
    float[] totals = sum.remove(LOSS).data();
    double loss = totals[0] / s.batch();
    float inv = 1f / s.batch();
    Map<String, Tensor> grads = new LinkedHashMap<>();
    for (Map.Entry<String, Tensor> e : sum.entrySet()) {
      float[] d = e.getValue().data();
      for (int i = 0; i < d.length; i++) {
        d[i] *= inv;
      }
      grads.put(e.getKey(), e.getValue());
    }
    double norm = GradientClipping.clipGlobalNorm(grads.values(), s.clipNorm());
    if (!Double.isFinite(loss) || !Double.isFinite(norm)) {
      // Deterministic: a retry from the last checkpoint would diverge again at the same step.
      throw new IllegalStateException("pretraining diverged at step " + step + ": loss " + loss
          + ", gradient norm " + norm + "; expected finite values (try a lower --lr or --clip)");
    }
    double lr = s.schedule().at(step);
    optimizer.step(params, grads, lr);
    return new StepRecord(step, loss, norm, lr, (System.nanoTime() - t0) / 1e9,
        (long) totals[1]);
  }

  /**
   * The slots rank {@code rank} computes: the batch's tables sorted by estimated cost, largest
   * first, each given to the rank with the least cost so far (ties to the lower rank). Every rank
   * computes the same assignment from the tables' sizes alone ({@link Prior#size}), so no message
   * is needed. Tables differ in cost by 1000x, and a step waits for its slowest rank.
   */
  static List<Integer> slotsOf(int rank, int size, Prior prior, PriorSizes sizes, long step,
      int batch) {
    return slotsOf(rank, size, Tables.of(prior, t -> sizes), step, batch);
  }

  /** As above for the tables of {@code tables}. */
  static List<Integer> slotsOf(int rank, int size, Tables tables, long step, int batch) {
    Integer[] order = new Integer[batch];
    double[] cost = new double[batch];
    for (int slot = 0; slot < batch; slot++) {
      order[slot] = slot;
      int[] rf = tables.size(step, slot);
      cost[slot] = estimatedCost(rf[0], rf[1]);
    }
    Arrays.sort(order, (a, b) -> cost[a] != cost[b] ? Double.compare(cost[b], cost[a]) : a - b);
    double[] load = new double[size];
    List<Integer> mine = new ArrayList<>();
    for (int slot : order) {
      int least = 0;
      for (int r = 1; r < size; r++) {
        if (load[r] < load[least]) {
          least = r;
        }
      }
      load[least] += cost[slot];
      if (least == rank) {
        mine.add(slot);
      }
    }
    Collections.sort(mine);
    return mine;
  }

  /**
   * Work of one table, up to a constant: each of its rows × (features + 1) cells goes through the
   * row attention (∝ the train rows, about 0.7 of the rows) and the projections and MLP (∝ 4E² +
   * 2E·M, which is 128·4E at E 64, M 128), in forward and backward alike.
   */
  static double estimatedCost(int rows, int features) {
    return (double) rows * (features + 1) * (0.7 * rows + 128 + features);
  }

  /**
   * Where a step's tables come from: the prior in training ({@link #of}), fixed tables in the
   * PyTorch oracle of a whole step ({@code DataParallelStepOracleTest}).
   */
  interface Tables {
    /** {rows, features} of table {@code slot} of {@code step}, without drawing it. */
    int[] size(long step, int slot);

    /** Table {@code slot} of {@code step}. */
    PriorDataset table(long step, int slot);

    /** The prior's tables at the curriculum's sizes of each step. */
    static Tables of(Prior prior, PretrainSettings s) {
      return of(prior, s::sizesAt);
    }

    private static Tables of(Prior prior, java.util.function.LongFunction<PriorSizes> sizesAt) {
      return new Tables() {
        @Override
        public int[] size(long step, int slot) {
          return prior.size(sizesAt.apply(step), step, slot);
        }

        @Override
        public PriorDataset table(long step, int slot) {
          return prior.sample(sizesAt.apply(step), step, slot);
        }
      };
    }
  }
}
