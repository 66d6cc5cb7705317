package dev.mosaic.spark.runner;

import dev.mosaic.spark.comm.Communicator;

/**
 * What a task's code gets from the barrier runner: its rank among the stage's tasks, a connected
 * communicator (closed by the runner), the settings, and the host it runs on.
 */
public record TaskEnv(int rank, int size, Communicator comm, MosaicConfig config, String host) {}
