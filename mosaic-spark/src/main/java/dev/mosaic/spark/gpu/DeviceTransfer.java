package dev.mosaic.spark.gpu;

import dev.mosaic.spark.comm.Communicator;

/**
 * A pending {@link NcclCommunicator#sendRecvDevice}: data moving between device buffers on the
 * communicator's stream. {@link #streamWait} orders later GPU work after it without blocking the
 * host; {@link #await} blocks the host (bounded by the communicator's timeout). The event is
 * destroyed once, by the first {@link #await}.
 */
public final class DeviceTransfer implements Communicator.Transfer {
  private final Object lock;
  private final CudaApi api;
  private final long context;
  private final CommStream stream;
  private final long done;
  private final String what;
  private boolean finished;

  DeviceTransfer(Object lock, CudaApi api, long context, CommStream stream, long done,
      String what) {
    this.lock = lock;
    this.api = api;
    this.context = context;
    this.stream = stream;
    this.done = done;
    this.what = what;
  }

  /** Makes {@code computeStream} wait for the transfer without blocking the host. */
  public void streamWait(long computeStream) {
    synchronized (lock) {
      if (!finished) {
        api.makeCurrent(context);
        api.streamWaitEvent(computeStream, done);
      }
    }
  }

  @Override
  public void await() {
    synchronized (lock) {
      if (!finished) {
        finished = true;
        stream.await(done, what); // destroys the event, also when the wait fails
      }
    }
  }
}
