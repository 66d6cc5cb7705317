package dev.mosaic.spark.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Optional;
import org.apache.spark.SparkConf;
import org.junit.jupiter.api.Test;

class SecurityWarningTest {
  private static final String CLUSTER = "spark://master:7077";

  @Test
  void localMastersKeepTheirTrafficOnThisMachine() {
    String[] masters = {"local", "local[4]", "local[4,2]", "local-cluster[2,1,1024]"};
    for (String master : masters) {
      assertEquals(Optional.empty(), SecurityWarning.check(master, new SparkConf(false)), master);
    }
  }

  @Test
  void aClusterWithoutAuthenticationAndEncryptionIsWarnedAbout() {
    String w = SecurityWarning.check(CLUSTER, new SparkConf(false)).orElseThrow();
    assertTrue(w.contains("spark.authenticate=true and spark.network.crypto.enabled=true"), w);
    assertTrue(w.contains("job secret") && w.contains("Security model"), w);
    assertTrue(!w.contains("\n"), "one line: " + w);

    String noCrypto = SecurityWarning.check("yarn",
        new SparkConf(false).set("spark.authenticate", "true")).orElseThrow();
    assertTrue(noCrypto.contains("without spark.network.crypto.enabled=true:"), noCrypto);

    String noAuth = SecurityWarning.check("k8s://https://api:6443",
        new SparkConf(false).set("spark.network.crypto.enabled", "true")).orElseThrow();
    assertTrue(noAuth.contains("without spark.authenticate=true:"), noAuth);
  }

  @Test
  void authenticatedAndEncryptedRpcIsQuiet() {
    SparkConf aes = new SparkConf(false).set("spark.authenticate", "true")
        .set("spark.network.crypto.enabled", "true");
    assertEquals(Optional.empty(), SecurityWarning.check(CLUSTER, aes));
    SparkConf tls = new SparkConf(false).set("spark.authenticate", "true")
        .set("spark.ssl.rpc.enabled", "true");
    assertEquals(Optional.empty(), SecurityWarning.check(CLUSTER, tls));
  }
}
