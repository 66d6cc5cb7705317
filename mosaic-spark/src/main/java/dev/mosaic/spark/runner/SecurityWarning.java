package dev.mosaic.spark.runner;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.WeakHashMap;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;

/**
 * The warning {@link MosaicContext#init} logs, once per SparkContext, where Mosaic's job secret is
 * exposed: on a cluster (any master but {@code local*}, whose traffic stays on this machine)
 * whose Spark RPC is not both authenticated and encrypted. The secret that admits a task into a
 * stage's mesh travels in the task closure, which Spark ships in plain text unless its RPC
 * encryption is on; without authentication any process may join Spark's RPC (and Spark's AES
 * encryption is negotiated only by its authentication handshake).
 */
final class SecurityWarning {
  private static final System.Logger LOG = System.getLogger(SecurityWarning.class.getName());
  private static final Set<SparkContext> WARNED =
      Collections.synchronizedSet(Collections.newSetFromMap(new WeakHashMap<>()));

  private SecurityWarning() {}

  /** Logs {@link #check}'s warning, the first time for {@code sc}. */
  static void logOnce(SparkContext sc) {
    Optional<String> warning = check(sc.master(), sc.getConf());
    if (warning.isPresent() && WARNED.add(sc)) {
      LOG.log(System.Logger.Level.WARNING, warning.get());
    }
  }

  /** The warning for a session on {@code master} with {@code conf}, if one is due. */
  static Optional<String> check(String master, SparkConf conf) {
    if (master == null || master.startsWith("local")) {
      return Optional.empty();
    }
    boolean authenticated = conf.getBoolean("spark.authenticate", false);
    boolean encrypted = conf.getBoolean("spark.network.crypto.enabled", false)
        || conf.getBoolean("spark.ssl.rpc.enabled", false)
        || conf.getBoolean("spark.authenticate.enableSaslEncryption", false);
    if (authenticated && encrypted) {
      return Optional.empty();
    }
    List<String> missing = new ArrayList<>();
    if (!authenticated) {
      missing.add("spark.authenticate=true");
    }
    if (!encrypted) {
      missing.add("spark.network.crypto.enabled=true");
    }
    return Optional.of("Mosaic on " + master + " without " + String.join(" and ", missing)
        + ": the job secret that admits tasks to a stage's mesh travels in the task closure,"
        + " which Spark's RPC then ships unprotected (readable on the network, or by any process"
        + " that joins it), and the attention data between tasks is never encrypted; on a shared"
        + " network set both (docs/deploy.md, \"Security model\")");
  }
}
