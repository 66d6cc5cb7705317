package dev.mosaic.spark.runner;

import dev.mosaic.spark.comm.CommException;
import dev.mosaic.spark.comm.TcpCommunicator;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.BarrierTaskInfo;

/**
 * Builds the task communicator from the barrier coordinates in one sync round: every task opens
 * a listener on its executor's own address, all tasks exchange {@code host:port} through
 * {@link BarrierTaskContext#allGather}, then connect. A task whose listener fails still takes
 * part in the round (with an error marker), so no peer is left waiting for it.
 */
final class Rendezvous {
  private static final String OK = "ok ";
  private static final String ERR = "err ";

  private Rendezvous() {}

  /** The host part of the executor address Spark gives for {@code rank}. */
  static String hostOf(BarrierTaskContext ctx, int rank) {
    BarrierTaskInfo[] infos = ctx.getTaskInfos();
    String addr = infos[rank].address();
    int colon = addr.lastIndexOf(':');
    return colon > 0 ? addr.substring(0, colon) : addr;
  }

  /** The executor host of every rank, in rank order. */
  static java.util.List<String> hosts(BarrierTaskContext ctx) {
    java.util.List<String> hosts = new ArrayList<>();
    for (int r = 0; r < ctx.getTaskInfos().length; r++) {
      hosts.add(hostOf(ctx, r));
    }
    return hosts;
  }

  /**
   * @param allGather the stage's one sync round, bounded ({@link BoundedAllGather})
   */
  static TcpCommunicator connect(BarrierTaskContext ctx, Function<String, String[]> allGather,
      byte[] secret, MosaicConfig config) throws Exception {
    int rank = ctx.partitionId();
    String host = hostOf(ctx, rank);
    TcpCommunicator.Listener listener = null;
    String mine;
    try {
      listener = TcpCommunicator.listen(InetAddress.getByName(host));
      mine = OK + listener.address();
    } catch (Exception e) {
      mine = ERR + "rank " + rank + " on " + host + " could not listen: " + e.getMessage();
    }
    // Until connect() owns the listener, close it on every way out: allGather throws when the
    // stage is killed (a peer failed before the rendezvous), and a listener left open there
    // leaks its server socket for the life of the executor.
    boolean handedOver = false;
    try {
      String[] all = allGather.apply(mine);
      List<String> peers = new ArrayList<>();
      for (String s : all) {
        if (s.startsWith(ERR)) {
          // A transport failure (a port, an address): another attempt may well succeed.
          throw new CommException("Mosaic rendezvous failed: " + s.substring(ERR.length()));
        }
        peers.add(s.substring(OK.length()));
      }
      handedOver = true; // connect closes the listener in every case
      return TcpCommunicator.connect(rank, peers, listener, secret, config.commConfig());
    } finally {
      if (!handedOver && listener != null) {
        listener.close();
      }
    }
  }
}
