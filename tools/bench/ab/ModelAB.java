import java.net.*; import java.nio.file.*; import java.lang.reflect.*; import java.util.*;
public class ModelAB {
  public static void main(String[] a) throws Exception {
    // args: kernelsA sparkA kernelsB sparkB rows rounds threads
    int rows = Integer.parseInt(a[4]), rounds = Integer.parseInt(a[5]), threads = Integer.parseInt(a[6]);
    List<URL> ext = new ArrayList<>();
    for (String p : Files.readString(Path.of("/work/main/mosaic-spark/target/classpath.txt")).trim().split(":"))
      if (!p.contains("mosaic-kernels")) ext.add(Path.of(p).toUri().toURL());
    URLClassLoader parent = new URLClassLoader(ext.toArray(new URL[0]), ClassLoader.getPlatformClassLoader());
    Object[] r = new Object[2]; Method[] m = new Method[2];
    for (int i = 0; i < 2; i++) {
      URLClassLoader l = new URLClassLoader(new URL[] {Path.of(a[2*i]).toUri().toURL(), Path.of(a[2*i+1]).toUri().toURL(), Path.of("/tmp/kab/model").toUri().toURL()}, parent);
      Class<?> c = l.loadClass("ModelRunner");
      r[i] = c.getConstructor().newInstance();
      m[i] = c.getMethod("run", int.class, int.class);
    }
    for (int i = 0; i < 2; i++) m[i].invoke(r[i], 2000, threads); // warm-up
    for (int round = 0; round < rounds; round++) for (int k = 0; k < 2; k++) {
      int i = round % 2 == 0 ? k : 1 - k;
      double[] res = (double[]) m[i].invoke(r[i], rows, threads);
      System.out.printf("round %d %s: %.2f s, %.0f rows/s, checksum %.6f%n", round, i == 0 ? "A (before)" : "B (after)", res[0], rows / res[0], res[1]);
    }
    System.exit(0);
  }
}
