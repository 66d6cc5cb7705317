package dev.mosaic.spark.comm;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@link Communicator} over NIO TCP sockets: a full mesh of authenticated connections, each
 * driven by a sender and a receiver daemon thread ({@code mosaic-comm-r<rank>-send/recv-r<peer>}).
 *
 * <p>Bootstrap in two steps so that a Spark barrier task needs one address exchange:
 *
 * <pre>{@code
 * TcpCommunicator.Listener l = TcpCommunicator.listen(InetAddress.getByName(host));
 * List<String> all = allGather(l.address());          // e.g. BarrierTaskContext.allGather
 * Communicator comm = TcpCommunicator.connect(rank, all, l, secret, CommConfig.defaults());
 * }</pre>
 *
 * <p><b>Channels and tags.</b> Every frame carries (channel, seq). The channel identifies the
 * communicator (root 0; split children get a hash of their creation path, see {@link
 * ChannelIds}). The seq is this communicator's count of messages sent to (or received from) that
 * peer, so the k-th send from A to B on a channel matches B's k-th receive from A on that channel.
 * Frames that arrive before their receive is posted are buffered per connection, so parent,
 * children and siblings share sockets without mixing or blocking each other.
 *
 * <p><b>Threading.</b> One thread should drive a communicator at a time (as with NCCL); a parent
 * and its children may be driven from different threads.
 *
 * <p><b>Byte counting.</b> {@link #bytesSent()} counts payload bytes submitted to other ranks
 * (not copies to self, not headers) by this communicator and all communicators split from it, as
 * they travel: 2 per element for {@link #sendRecvActivations} under {@link WireDtype#BF16}.
 *
 * <p><b>Timeouts.</b> After an await times out, the receive is withdrawn, but if its frame was
 * already being read the late bytes may still land in the array; a timed-out communicator should
 * be closed, since the peers' message counts no longer agree.
 */
public final class TcpCommunicator implements Communicator {

  private static final int BACKLOG = 128;

  private final Mesh mesh;
  private final TcpCommunicator parent; // null for the root
  private final long channel;
  private final int[] members; // group rank -> mesh rank
  private final int rank;
  private final long[] sendSeq; // guarded by this
  private final long[] recvSeq; // guarded by this
  private final AtomicLong bytesSent = new AtomicLong();
  private final List<TcpCommunicator> children = new CopyOnWriteArrayList<>();
  private final AtomicBoolean closed = new AtomicBoolean();
  private int splits; // guarded by this

  private TcpCommunicator(Mesh mesh, TcpCommunicator parent, long channel, int[] members,
      int rank) {
    this.mesh = mesh;
    this.parent = parent;
    this.channel = channel;
    this.members = members;
    this.rank = rank;
    this.sendSeq = new long[members.length];
    this.recvSeq = new long[members.length];
  }

  /** A bound server socket waiting for {@link #connect}; its port is chosen by the OS. */
  public static final class Listener implements AutoCloseable {
    private final ServerSocketChannel server;
    private final PeerAddress address;

    private Listener(ServerSocketChannel server, PeerAddress address) {
      this.server = server;
      this.address = address;
    }

    /** "host:port" (IPv6 as "[addr]:port") to publish to the other ranks. */
    public String address() {
      return address.toString();
    }

    int port() {
      return address.port();
    }

    ServerSocketChannel channel() {
      return server;
    }

    /** Idempotent; {@link #connect} calls it. */
    @Override
    public void close() {
      try {
        server.close();
      } catch (IOException ignored) {
        // Nothing useful to do: the port is released either way.
      }
    }
  }

  /**
   * Opens a server socket on {@code bindAddress} only (never the wildcard: peers must be able to
   * dial the published address) with an ephemeral port.
   */
  public static Listener listen(InetAddress bindAddress) {
    Objects.requireNonNull(bindAddress, "bindAddress");
    if (bindAddress.isAnyLocalAddress()) {
      throw new IllegalArgumentException("listen: bind to this host's address on the job's"
          + " network, not the wildcard " + bindAddress.getHostAddress());
    }
    ServerSocketChannel server = null;
    try {
      server = ServerSocketChannel.open();
      server.bind(new InetSocketAddress(bindAddress, 0), BACKLOG);
      int port = ((InetSocketAddress) server.getLocalAddress()).getPort();
      return new Listener(server, PeerAddress.of(bindAddress, port));
    } catch (IOException e) {
      if (server != null) {
        try {
          server.close();
        } catch (IOException ignored) {
          // Reporting the bind failure matters more.
        }
      }
      throw new CommException("listen: could not open a server socket on "
          + bindAddress.getHostAddress() + ": " + e, e);
    }
  }

  /**
   * Connects this rank to all others and returns the root communicator. Blocks until the mesh is
   * complete; every step is bounded by {@code config.timeout()}. Closes {@code listener}.
   *
   * @param rank this rank, an index into {@code peerAddresses}
   * @param peerAddresses every rank's {@link Listener#address()}, indexed by rank, identical on
   *     all ranks
   * @param secret the job's shared secret; both sides of each connection prove they know it
   * @throws CommException on timeout, unreachable peer or failed authentication
   */
  public static TcpCommunicator connect(int rank, List<String> peerAddresses, Listener listener,
      byte[] secret, CommConfig config) {
    Objects.requireNonNull(listener, "listener");
    try {
      Objects.requireNonNull(peerAddresses, "peerAddresses");
      Objects.requireNonNull(config, "config");
      if (rank < 0 || rank >= peerAddresses.size()) {
        throw new IllegalArgumentException(
            "rank " + rank + " is out of range for " + peerAddresses.size() + " peer addresses");
      }
      List<PeerAddress> peers = new ArrayList<>();
      for (String a : peerAddresses) {
        peers.add(PeerAddress.parse(a));
      }
      if (peers.get(rank).port() != listener.port()) {
        throw new IllegalArgumentException("peerAddresses[" + rank + "] is " + peers.get(rank)
            + " but this rank's listener is at " + listener.address());
      }
      Mesh mesh = MeshBootstrap.build(rank, peers, listener.channel(), secret, config);
      int[] members = new int[peers.size()];
      Arrays.setAll(members, i -> i);
      return new TcpCommunicator(mesh, null, ChannelIds.ROOT, members, rank);
    } finally {
      listener.close();
    }
  }

  @Override
  public int rank() {
    return rank;
  }

  @Override
  public int size() {
    return members.length;
  }

  @Override
  public Transfer sendRecv(float[] send, int sendOff, int sendLen, int dst, float[] recv,
      int recvOff, int recvLen, int src) {
    Objects.requireNonNull(send, "send");
    Objects.requireNonNull(recv, "recv");
    Objects.checkFromIndexSize(sendOff, sendLen, send.length);
    Objects.checkFromIndexSize(recvOff, recvLen, recv.length);
    return exchange("sendRecv", send, sendOff, sendLen, dst, recv, recvOff, recvLen, src);
  }

  /** {@link #sendRecv} with the payload in {@link CommConfig#wireDtype} (K/V blocks only). */
  @Override
  public Transfer sendRecvActivations(float[] send, int sendOff, int sendLen, int dst,
      float[] recv, int recvOff, int recvLen, int src) {
    Objects.requireNonNull(send, "send");
    Objects.requireNonNull(recv, "recv");
    Objects.checkFromIndexSize(sendOff, sendLen, send.length);
    Objects.checkFromIndexSize(recvOff, recvLen, recv.length);
    return exchange("sendRecvActivations", send, sendOff, sendLen, dst, recv, recvOff, recvLen,
        src, mesh.config().wireDtype());
  }

  /**
   * The one point-to-point primitive everything uses. Posts the receive first (so the network
   * thread can read straight into {@code recv}), then queues the send. {@code recvLen ==
   * PendingReceive.ANY} receives a message of any length into a fresh array.
   */
  PendingTransfer exchange(String op, float[] send, int sendOff, int sendLen, int dst,
      float[] recv, int recvOff, int recvLen, int src) {
    return exchange(op, send, sendOff, sendLen, dst, recv, recvOff, recvLen, src,
        WireDtype.FP32);
  }

  /** As above with the send's payload travelling as {@code wire}. */
  private PendingTransfer exchange(String op, float[] send, int sendOff, int sendLen, int dst,
      float[] recv, int recvOff, int recvLen, int src, WireDtype wire) {
    checkOpen(op);
    checkRank(op, "dst", dst);
    checkRank(op, "src", src);
    FrameKey sendKey;
    FrameKey recvKey;
    synchronized (this) {
      sendKey = new FrameKey(channel, sendSeq[dst]++);
      recvKey = new FrameKey(channel, recvSeq[src]++);
    }
    String from = describe(src);
    PendingReceive receive = recvLen == PendingReceive.ANY
        ? PendingReceive.anyLength(from)
        : new PendingReceive(recv, recvOff, recvLen, from);
    Mailbox mailbox = mesh.mailbox(members[src]);
    mailbox.post(recvKey, receive);
    PendingTransfer.SendSide sent = new PendingTransfer.SendSide(
        mesh.send(members[dst], sendKey, send, sendOff, sendLen, wire), describe(dst), sendLen);
    if (dst != rank) {
      countSent((long) sendLen * wire.bytes());
    }
    return new PendingTransfer(op, mesh.config(), sent,
        new PendingTransfer.ReceiveSide(receive, from, recvKey, mailbox));
  }

  @Override
  public float[][] allGather(float[] data) {
    Objects.requireNonNull(data, "data");
    return Collectives.allGather(this, "allGather", data);
  }

  @Override
  public float[][] allToAll(float[][] send) {
    Objects.requireNonNull(send, "send");
    return Collectives.allToAll(this, send);
  }

  @Override
  public void allReduce(float[] data, ReduceOp op) {
    Objects.requireNonNull(data, "data");
    Objects.requireNonNull(op, "op");
    Collectives.allReduce(this, data, op);
  }

  @Override
  public void barrier() {
    checkOpen("barrier");
    Collectives.barrier(this);
  }

  /**
   * Colors and keys are exchanged with one allGather (each int as two exact 16-bit floats); the
   * child's channel id is derived locally from this communicator's channel, the number of splits
   * it did before and the color, so all members agree without another round.
   */
  @Override
  public Communicator split(int color, int key) {
    float[][] all = Collectives.allGather(this, "split",
        new float[] {high(color), low(color), high(key), low(key)});
    List<int[]> same = new ArrayList<>(); // {key, group rank}
    for (int r = 0; r < all.length; r++) {
      if (decode(all[r], 0) == color) {
        same.add(new int[] {decode(all[r], 2), r});
      }
    }
    same.sort(Comparator.<int[]>comparingInt(m -> m[0]).thenComparingInt(m -> m[1]));
    int[] childMembers = new int[same.size()];
    int childRank = -1;
    for (int i = 0; i < childMembers.length; i++) {
      int groupRank = same.get(i)[1];
      childMembers[i] = members[groupRank];
      if (groupRank == rank) {
        childRank = i;
      }
    }
    int index;
    synchronized (this) {
      index = splits++;
    }
    TcpCommunicator child = new TcpCommunicator(mesh, this,
        ChannelIds.child(channel, index, color), childMembers, childRank);
    children.add(child);
    if (closed.get()) {
      child.close(); // lost a race with close(): do not leak a live child
    }
    return child;
  }

  @Override
  public long bytesSent() {
    return bytesSent.get();
  }

  /**
   * Closing the root closes every socket and joins every I/O thread; closing a child only fails
   * its own pending receives and marks it (and its children) closed. Idempotent.
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    for (TcpCommunicator child : children) {
      child.close();
    }
    if (parent == null) {
      mesh.close();
      return;
    }
    parent.children.remove(this);
    CommException reason = new CommException("split communicator (group rank " + rank
        + ", channel " + Long.toHexString(channel) + ") was closed");
    for (int m : members) {
      mesh.mailbox(m).failChannel(channel, reason);
    }
  }

  /**
   * Test hook: the next frame that the receiver (or sender) thread of the connection to group
   * rank {@code peer} handles throws {@code fault} (an Error or RuntimeException) instead.
   */
  void injectIoFault(int peer, boolean inReceiver, Throwable fault) {
    mesh.connection(members[peer]).injectFault(inReceiver, fault);
  }

  /** The daemon threads behind this communicator's connections (for tests and diagnostics). */
  List<Thread> ioThreads() {
    return mesh.threads();
  }

  private void countSent(long bytes) {
    for (TcpCommunicator c = this; c != null; c = c.parent) {
      c.bytesSent.addAndGet(bytes);
    }
  }

  private void checkOpen(String op) {
    if (closed.get() || mesh.isClosed()) {
      throw new CommException(op + ": the communicator is closed");
    }
    CommException failed = mesh.failure();
    if (failed != null) {
      throw new CommException(op + ": the communicator failed: " + failed.getMessage(), failed);
    }
  }

  private void checkRank(String op, String role, int r) {
    if (r < 0 || r >= members.length) {
      throw new IllegalArgumentException(
          op + ": " + role + " rank " + r + " is out of range for size " + members.length);
    }
  }

  /** Peer description for messages; split children add the group rank. */
  private String describe(int groupRank) {
    String meshName = mesh.describe(members[groupRank]);
    return parent == null ? meshName : meshName + " [group rank " + groupRank + "]";
  }

  // Ints travel as two 16-bit halves: every value 0..65535 is an exact float.
  private static float high(int v) {
    return v >>> 16;
  }

  private static float low(int v) {
    return v & 0xFFFF;
  }

  private static int decode(float[] a, int i) {
    return ((int) a[i] << 16) | (int) a[i + 1];
  }
}
