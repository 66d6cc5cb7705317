package dev.mosaic.spark.comm;

import java.net.InetAddress;
import java.net.InetSocketAddress;

/** A rank's "host:port" as exchanged in the barrier round ("[v6addr]:port" for IPv6 literals). */
record PeerAddress(String host, int port) {

  PeerAddress {
    if (host == null || host.isEmpty()) {
      throw new IllegalArgumentException("peer host is empty");
    }
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("peer port " + port + " is out of range 1..65535");
    }
  }

  static PeerAddress of(InetAddress address, int port) {
    // Numeric form: the address the listener is really bound to, no DNS round trip on the peer.
    return new PeerAddress(address.getHostAddress(), port);
  }

  static PeerAddress parse(String text) {
    if (text == null) {
      throw new IllegalArgumentException("peer address is null");
    }
    int colon = text.lastIndexOf(':');
    if (colon <= 0 || colon == text.length() - 1) {
      throw new IllegalArgumentException("peer address '" + text + "' is not host:port");
    }
    String host = text.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    int port;
    try {
      port = Integer.parseInt(text.substring(colon + 1));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("peer address '" + text + "' has a non-numeric port");
    }
    return new PeerAddress(host, port);
  }

  InetSocketAddress resolve() {
    return new InetSocketAddress(host, port);
  }

  @Override
  public String toString() {
    return host.indexOf(':') >= 0 ? "[" + host + "]:" + port : host + ":" + port;
  }
}
