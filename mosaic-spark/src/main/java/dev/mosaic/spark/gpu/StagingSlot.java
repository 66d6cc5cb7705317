package dev.mosaic.spark.gpu;

import dev.mosaic.spark.comm.Communicator;

/**
 * One slot of the host {@code sendRecv} double buffer: pinned send and receive staging and the
 * transfer that uses them. The ring's current/next blocks alternate between two slots, so a slot
 * is reused only after its previous transfer is out.
 */
final class StagingSlot {
  final int index;
  final PinnedBuffer send;
  final PinnedBuffer recv;
  private Pending pending;

  StagingSlot(int index, CudaApi api, long context) {
    this.index = index;
    this.send = new PinnedBuffer(api, context);
    this.recv = new PinnedBuffer(api, context);
  }

  /** Waits for this slot's previous transfer, if it is still pending. */
  void drain() {
    if (pending != null) {
      pending.await();
    }
  }

  /** A transfer whose received floats land in {@code recv[recvOff, +recvLen)} on await. */
  Communicator.Transfer start(Object lock, CommStream stream, long done, float[] recv,
      int recvOff, int recvLen, String what) {
    pending = new Pending(lock, stream, done, recv, recvOff, recvLen, what);
    return pending;
  }

  void free() {
    new Cleanup().run(send::free).run(recv::free).rethrow();
  }

  /** A pending host sendRecv. */
  private final class Pending implements Communicator.Transfer {
    private final Object lock;
    private final CommStream stream;
    private final long done;
    private final float[] into;
    private final int off;
    private final int len;
    private final String what;
    private boolean finished;

    Pending(Object lock, CommStream stream, long done, float[] into, int off, int len,
        String what) {
      this.lock = lock;
      this.stream = stream;
      this.done = done;
      this.into = into;
      this.off = off;
      this.len = len;
      this.what = what;
    }

    @Override
    public void await() {
      synchronized (lock) {
        if (finished) {
          return;
        }
        finished = true;
        if (pending == this) {
          pending = null;
        }
        stream.await(done, what);
        recv.floats(4L * len).get(into, off, len);
      }
    }
  }
}
