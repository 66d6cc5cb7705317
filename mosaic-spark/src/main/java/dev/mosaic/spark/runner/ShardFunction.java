package dev.mosaic.spark.runner;

import java.io.Serializable;
import java.util.Iterator;

/**
 * The code one barrier task runs on its shard: it reads the partition's records, talks to the
 * other tasks through {@link TaskEnv#comm()}, and returns its output records. Shipped to the
 * executors, so it must be serializable.
 */
@FunctionalInterface
public interface ShardFunction<I, O> extends Serializable {
  Iterator<O> apply(TaskEnv env, Iterator<I> records) throws Exception;
}
