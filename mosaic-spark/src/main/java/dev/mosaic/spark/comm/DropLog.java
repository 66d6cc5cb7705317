package dev.mosaic.spark.comm;

import java.util.ArrayList;
import java.util.List;

/**
 * The connections a rank dropped during bootstrap: each is logged at WARN (up to a cap, so a
 * flood cannot flood the log) and a few are kept for the one-line error if the mesh never
 * completes. Connections that spoke the Mosaic handshake are kept first: a real peer with the
 * wrong secret or size explains a failed job better than a port scanner does.
 */
final class DropLog {

  private static final System.Logger LOG = System.getLogger(DropLog.class.getName());
  /** Individually logged drops per bootstrap; later ones are only counted. */
  static final int LOGGED = 16;
  /** Drops quoted in the timeout message. */
  static final int QUOTED = 3;
  /** Longest quoted reason, so the message stays bounded whatever a peer sent. */
  static final int REASON_CHARS = 200;

  private final String who;
  private final List<String> mosaicPeers = new ArrayList<>();
  private final List<String> strays = new ArrayList<>();
  private int count;

  /** {@code who} prefixes log lines, e.g. "rank 0 (127.0.0.1:4000)". */
  DropLog(String who) {
    this.who = who;
  }

  void add(String remote, String reason, boolean speaksMosaic) {
    count++;
    String entry = "from " + remote + ": " + Messages.oneLine(reason, REASON_CHARS);
    if (count <= LOGGED) {
      LOG.log(System.Logger.Level.WARNING, who + " dropped a connection that failed the"
          + " handshake and keeps waiting for its peers: " + entry);
    } else if (count == LOGGED + 1) {
      LOG.log(System.Logger.Level.WARNING, who + " dropped more than " + LOGGED
          + " connections; counting further drops without logging each");
    }
    List<String> kept = speaksMosaic ? mosaicPeers : strays;
    if (kept.size() < QUOTED) {
      kept.add(entry);
    }
  }

  int count() {
    return count;
  }

  /** "" if nothing was dropped, else "; dropped 3 connections that failed the handshake: ...". */
  String summary() {
    if (count == 0) {
      return "";
    }
    List<String> quoted = new ArrayList<>(mosaicPeers);
    for (String s : strays) {
      if (quoted.size() < QUOTED) {
        quoted.add(s);
      }
    }
    while (quoted.size() > QUOTED) {
      quoted.remove(quoted.size() - 1);
    }
    String more = count > quoted.size() ? "; and " + (count - quoted.size()) + " more" : "";
    return "; dropped " + count + (count == 1 ? " connection" : " connections")
        + " that failed the handshake: " + String.join("; ", quoted) + more;
  }
}
