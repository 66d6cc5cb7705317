package dev.mosaic.spark.prior;

/** A generator's output before labelling: feature columns and a continuous target, per row. */
record RawTable(double[][] columns, double[] target) {}
