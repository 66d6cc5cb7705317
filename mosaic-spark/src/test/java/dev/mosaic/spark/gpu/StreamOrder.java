package dev.mosaic.spark.gpu;

import java.util.HashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * A race detector for {@link FakeCuda}, whose stream work runs at once and so cannot go wrong by
 * itself: it checks the ordering the real asynchronous GPU would need. Every operation enqueued on
 * a stream gets the next tick of that stream; each stream knows, per stream, the last tick that is
 * guaranteed complete before its next operation (a vector clock). Events snapshot their stream's
 * knowledge, {@code cuStreamWaitEvent} merges a snapshot into a stream, a host wait merges it into
 * the host's, and the host's knowledge flows into every operation it enqueues later. An access to
 * memory (per allocation) must know every conflicting earlier access — the last write, and for a
 * write also the reads since — made by another stream or, for pinned memory, by the host.
 */
final class StreamOrder {
  /** The host, as the "stream" of host accesses to pinned memory. */
  static final long HOST = -1;

  private final Map<Long, Map<Long, Long>> knows = new HashMap<>();
  private final Map<Long, Map<Long, Long>> events = new HashMap<>();
  private final Map<Long, Long> host = new HashMap<>();
  private final Map<Long, Access> accesses = new HashMap<>();

  private static final class Access {
    long writer;
    long writeTick;
    final Map<Long, Long> readers = new HashMap<>();
  }

  /** Enqueues one operation on {@code stream}; returns its tick. */
  synchronized long tick(long stream) {
    Map<Long, Long> k = knows.computeIfAbsent(stream, s -> new HashMap<>());
    mergeInto(k, host);
    return k.merge(stream, 1L, Long::sum);
  }

  synchronized void record(long event, long stream) {
    Map<Long, Long> k = knows.computeIfAbsent(stream, s -> new HashMap<>());
    mergeInto(k, host);
    events.put(event, new HashMap<>(k));
  }

  synchronized void streamWait(long stream, long event) {
    mergeInto(knows.computeIfAbsent(stream, s -> new HashMap<>()),
        events.getOrDefault(event, Map.of()));
  }

  /** The host saw {@code event} complete. */
  synchronized void hostWaited(long event) {
    mergeInto(host, events.getOrDefault(event, Map.of()));
  }

  synchronized void forget(long allocation) {
    accesses.remove(allocation);
  }

  /**
   * Checks an access to {@code allocation} by {@code stream} at {@code tick} (or by the host,
   * {@link #HOST}, tick ignored); returns a description of the race, or null.
   */
  synchronized String access(long allocation, long stream, long tick, boolean write,
      Function<Long, String> name) {
    Access a = accesses.computeIfAbsent(allocation, x -> new Access());
    String race = null;
    if (a.writer != 0 && !sees(stream, a.writer, a.writeTick)) {
      race = (write ? "write" : "read") + " of " + name.apply(allocation) + " on " + who(stream)
          + " races with the write on " + who(a.writer) + " (no event orders them)";
    }
    if (write && race == null) {
      for (Map.Entry<Long, Long> r : a.readers.entrySet()) {
        if (!sees(stream, r.getKey(), r.getValue())) {
          race = "write of " + name.apply(allocation) + " on " + who(stream)
              + " races with a read on " + who(r.getKey()) + " (no event orders them)";
        }
      }
    }
    long t = stream == HOST ? 0 : tick;
    if (write) {
      a.writer = stream;
      a.writeTick = t;
      a.readers.clear();
    } else {
      a.readers.merge(stream, t, Math::max);
    }
    return race;
  }

  private boolean sees(long stream, long other, long tick) {
    if (stream == other) {
      return true;
    }
    Map<Long, Long> k = stream == HOST ? host : knows.getOrDefault(stream, Map.of());
    if (other == HOST) {
      return true; // host work is done before anything it enqueues later
    }
    Long mergedHost = stream == HOST ? null : host.get(other);
    long seen = Math.max(k.getOrDefault(other, 0L), mergedHost == null ? 0 : mergedHost);
    return seen >= tick;
  }

  private static String who(long stream) {
    return stream == HOST ? "the host" : "stream " + stream;
  }

  private static void mergeInto(Map<Long, Long> into, Map<Long, Long> from) {
    from.forEach((s, t) -> into.merge(s, t, Math::max));
  }
}
