package dev.mosaic.spark.datasets;

import dev.mosaic.kernels.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A table split into train and test rows, laid out as nanoTabPFN wants it: {@code x} row-major
 * {@code (rows, features)} with the {@code nTrain} train rows first, {@code y} their class ids.
 */
public record TrainTestSplit(String name, float[] x, int[] y, int features, int nTrain,
    int classes) {
  public int rows() {
    return y.length;
  }

  public int tests() {
    return y.length - nTrain;
  }

  public Tensor xTensor() {
    return Tensor.of(x, rows(), features);
  }

  /** The train labels as floats, as the model takes them. */
  public float[] yTrain() {
    float[] out = new float[nTrain];
    for (int i = 0; i < nTrain; i++) {
      out[i] = y[i];
    }
    return out;
  }

  /** The test rows' labels. */
  public int[] yTest() {
    return Arrays.copyOfRange(y, nTrain, y.length);
  }

  /**
   * A stratified split: in every class, {@code round(n_c · testFraction)} rows (at least one, and
   * leaving at least one for training) go to the test set, chosen at random from {@code seed};
   * then the train rows and the test rows are each shuffled. The same seed gives the same split.
   */
  public static TrainTestSplit stratified(LabeledTable t, double testFraction, long seed) {
    if (!(testFraction > 0 && testFraction < 1)) {
      throw new IllegalArgumentException("testFraction must be in (0, 1), got " + testFraction);
    }
    SplittableRandom rnd = new SplittableRandom(seed);
    List<Integer> train = new ArrayList<>();
    List<Integer> test = new ArrayList<>();
    for (int c = 0; c < t.classes(); c++) {
      List<Integer> members = new ArrayList<>();
      for (int r = 0; r < t.rows(); r++) {
        if (t.y()[r] == c) {
          members.add(r);
        }
      }
      if (members.size() < 2) {
        throw new IllegalArgumentException("dataset " + t.name() + ": class " + c + " has "
            + members.size() + " rows: a stratified split needs at least 2 per class");
      }
      shuffle(members, rnd);
      int k = (int) Math.max(1, Math.min(members.size() - 1,
          Math.round(members.size() * testFraction)));
      test.addAll(members.subList(0, k));
      train.addAll(members.subList(k, members.size()));
    }
    shuffle(train, rnd);
    shuffle(test, rnd);
    int f = t.features();
    List<Integer> order = new ArrayList<>(train);
    order.addAll(test);
    float[] x = new float[order.size() * f];
    int[] y = new int[order.size()];
    for (int i = 0; i < order.size(); i++) {
      int r = order.get(i);
      System.arraycopy(t.x(), r * f, x, i * f, f);
      y[i] = t.y()[r];
    }
    return new TrainTestSplit(t.name(), x, y, f, train.size(), t.classes());
  }

  private static void shuffle(List<Integer> v, SplittableRandom rnd) {
    for (int i = v.size() - 1; i > 0; i--) {
      int j = rnd.nextInt(i + 1);
      Integer tmp = v.get(i);
      v.set(i, v.get(j));
      v.set(j, tmp);
    }
  }
}
