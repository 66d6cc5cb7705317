package dev.mosaic.spark.prior;

import java.util.SplittableRandom;

/**
 * The activations a random MLP layer draws from. StrictMath keeps a dataset bit-identical
 * across JVMs and CPUs for the same seed.
 */
enum Activation {
  IDENTITY, TANH, RELU, LEAKY_RELU, SIN, ABS, SIGMOID, STEP, SQUARE_CLIPPED;

  static Activation draw(SplittableRandom rnd) {
    Activation[] all = values();
    return all[rnd.nextInt(all.length)];
  }

  double apply(double z) {
    return switch (this) {
      case IDENTITY -> z;
      case TANH -> StrictMath.tanh(z);
      case RELU -> Math.max(0, z);
      case LEAKY_RELU -> z > 0 ? z : 0.1 * z;
      case SIN -> StrictMath.sin(z);
      case ABS -> Math.abs(z);
      case SIGMOID -> 1 / (1 + StrictMath.exp(-z));
      case STEP -> z > 0 ? 1 : 0;
      case SQUARE_CLIPPED -> Math.min(z * z, 9);
    };
  }
}
