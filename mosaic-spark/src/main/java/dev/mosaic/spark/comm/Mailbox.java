package dev.mosaic.spark.comm;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Matches frames from one peer (or from this rank to itself) with posted receives, by
 * {@link FrameKey}. A frame that arrives before its receive is posted is buffered, so traffic of
 * different communicators (channels) on one connection never blocks or mixes. Once the peer is
 * gone ({@link #fail}), frames already buffered can still be received; anything else fails.
 */
final class Mailbox {

  private final Map<FrameKey, PendingReceive> posted = new HashMap<>();
  private final Map<FrameKey, float[]> arrived = new HashMap<>();
  private CommException failure;

  /** Registers a receive, completing it at once if its frame is already here. */
  void post(FrameKey key, PendingReceive receive) {
    float[] data;
    CommException failed = null;
    synchronized (this) {
      data = arrived.remove(key);
      if (data == null) {
        failed = failure;
        if (failed == null && posted.putIfAbsent(key, receive) != null) {
          throw new IllegalStateException("two receives posted for " + key);
        }
      }
    }
    // Copies and callbacks run outside the lock so the network thread is never held up.
    if (data != null) {
      receive.fill(key, data);
    } else if (failed != null) {
      receive.fail(failed);
    }
  }

  /** For the network thread: takes the receive waiting for {@code key}, or null if none yet. */
  synchronized PendingReceive claim(FrameKey key) {
    return posted.remove(key);
  }

  /** A whole frame's payload: hands it to its receive, or buffers it until one is posted. */
  void deliver(FrameKey key, float[] data) {
    PendingReceive receive;
    synchronized (this) {
      receive = posted.remove(key);
      if (receive == null) {
        if (arrived.putIfAbsent(key, data) != null) {
          throw new CommException("protocol error: a second frame for " + key + " arrived");
        }
        return;
      }
    }
    receive.fill(key, data);
  }

  /**
   * A send to self: copies straight into the posted receive if there is one, else buffers a
   * copy (the caller may reuse {@code src} as soon as this returns).
   */
  void deliverCopy(FrameKey key, float[] src, int off, int len) {
    PendingReceive receive;
    synchronized (this) {
      receive = posted.remove(key);
      if (receive == null) {
        if (arrived.putIfAbsent(key, Arrays.copyOfRange(src, off, off + len)) != null) {
          throw new IllegalStateException("a second frame for " + key + " sent to self");
        }
        return;
      }
    }
    receive.fillCopy(key, src, off, len);
  }

  /** Withdraws a receive that timed out; false if the network thread already took it. */
  synchronized boolean cancel(FrameKey key, PendingReceive receive) {
    return posted.remove(key, receive);
  }

  /** The peer is gone: fails every waiting receive and, from now on, every unmatched post. */
  void fail(CommException e) {
    List<PendingReceive> waiting;
    synchronized (this) {
      if (failure == null) {
        failure = e;
      }
      waiting = new ArrayList<>(posted.values());
      posted.clear();
    }
    waiting.forEach(r -> r.fail(e));
  }

  /** A child communicator closed: fails its waiting receives and drops its buffered frames. */
  void failChannel(long channel, CommException e) {
    List<PendingReceive> waiting = new ArrayList<>();
    synchronized (this) {
      for (Iterator<Map.Entry<FrameKey, PendingReceive>> it = posted.entrySet().iterator();
          it.hasNext(); ) {
        Map.Entry<FrameKey, PendingReceive> entry = it.next();
        if (entry.getKey().channel() == channel) {
          waiting.add(entry.getValue());
          it.remove();
        }
      }
      arrived.keySet().removeIf(k -> k.channel() == channel);
    }
    waiting.forEach(r -> r.fail(e));
  }
}
