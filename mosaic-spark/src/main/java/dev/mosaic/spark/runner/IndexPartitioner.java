package dev.mosaic.spark.runner;

import org.apache.spark.Partitioner;

/** Sends a record keyed by a shard index to that partition: partition r is rank r's shard. */
public final class IndexPartitioner extends Partitioner {
  private static final long serialVersionUID = 1L;
  private final int parts;

  public IndexPartitioner(int parts) {
    this.parts = parts;
  }

  @Override
  public int numPartitions() {
    return parts;
  }

  @Override
  public int getPartition(Object key) {
    int k = (Integer) key;
    if (k < 0 || k >= parts) {
      throw new IllegalArgumentException("shard index " + k + " outside 0.." + (parts - 1));
    }
    return k;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof IndexPartitioner other && other.parts == parts;
  }

  @Override
  public int hashCode() {
    return parts;
  }
}
