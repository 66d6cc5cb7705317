import java.net.*; import java.nio.file.*; import java.lang.reflect.*; import java.util.*;
public class AB {
  public static void main(String[] a) throws Exception {
    // args: dirA dirB threads dims lengths rounds; -Dab.runner=DIR where Runner.class is
    String[] dirs = {a[0], a[1]};
    int threads = Integer.parseInt(a[2]);
    int[] dims = Arrays.stream(a[3].split(",")).mapToInt(Integer::parseInt).toArray();
    int[] lens = Arrays.stream(a[4].split(",")).mapToInt(Integer::parseInt).toArray();
    int rounds = Integer.parseInt(a[5]);
    int heads = 8;
    Object[] runners = new Object[2]; Method[] m = new Method[2];
    for (int i = 0; i < 2; i++) {
      URLClassLoader l = new URLClassLoader(new URL[] {Path.of(dirs[i]).toUri().toURL(), Path.of(System.getProperty("ab.runner", "/tmp/ab/runner")).toUri().toURL()}, ClassLoader.getPlatformClassLoader());
      Class<?> c = l.loadClass("Runner");
      runners[i] = c.getConstructor().newInstance();
      m[i] = c.getMethod("time", int.class, int.class, int.class, int.class, boolean.class, int.class);
    }
    // Optional per-side system properties (-Dab.propsA=k=v;k=v, -Dab.propsB=...), set just before
    // that side's first call, when its classes initialise: e.g. the same build with a flag off/on.
    for (int i = 0; i < 2; i++) {
      String props = System.getProperty(i == 0 ? "ab.propsA" : "ab.propsB", "");
      for (String kv : props.split(";")) {
        if (!kv.isBlank()) { String[] p = kv.split("=", 2); System.setProperty(p[0], p[1]); }
      }
      m[i].invoke(runners[i], threads, heads, dims[0], 64, false, 1);
    }
    // warm up
    for (int w = 0; w < 3; w++) for (int i = 0; i < 2; i++) for (int d : dims) { m[i].invoke(runners[i], threads, heads, d, 512, false, 3); m[i].invoke(runners[i], threads, heads, d, 512, true, 3);}
    for (int d : dims) for (int n : lens) for (boolean causal : new boolean[]{false, true}) {
      int reps = n >= 4096 ? 3 : 7;
      List<Double>[] ts = new List[] {new ArrayList<>(), new ArrayList<>()};
      double[] sums = new double[2];
      for (int r = 0; r < rounds; r++) for (int i = 0; i < 2; i++) {
        int ii = (r % 2 == 0) ? i : 1 - i;
        double[] res = (double[]) m[ii].invoke(runners[ii], threads, heads, d, n, causal, reps);
        ts[ii].add(res[0]); sums[ii] = res[1];
      }
      double flops = 4.0 * n * n * d * heads * (causal ? 0.5 : 1.0);
      double ma = med(ts[0]), mb = med(ts[1]);
      System.out.printf("d=%-4d n=%-6d causal=%-5s A %6.1f GF/s  B %6.1f GF/s  B/A x%.2f  checksum diff %.2e%n", d, n, causal, flops/ma/1e9, flops/mb/1e9, ma/mb, Math.abs(sums[0]-sums[1]));
    }
    System.exit(0);
  }
  static double med(List<Double> l) { List<Double> s = new ArrayList<>(l); Collections.sort(s); return s.get(s.size()/2); }
}
