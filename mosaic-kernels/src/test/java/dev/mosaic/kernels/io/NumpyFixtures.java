package dev.mosaic.kernels.io;

import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;

/** The files tools/fixtures/numpy_fixtures.py wrote with numpy, and the formulas of its values. */
final class NumpyFixtures {
  private NumpyFixtures() {}

  static Path file(String name) {
    URL url = NumpyFixtures.class.getResource("/fixtures/numpy/" + name);
    if (url == null) {
      throw new IllegalStateException("missing test resource fixtures/numpy/" + name
          + "; rerun tools/fixtures/numpy_fixtures.py");
    }
    try {
      return Path.of(url.toURI());
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The script's {@code f4}: 0.25 * i - 3, exact in float32. */
  static float[] f4(int n) {
    float[] out = new float[n];
    for (int i = 0; i < n; i++) {
      out[i] = (float) (i * 0.25 - 3);
    }
    return out;
  }

  /** The script's {@code f8} rounded to float32 as numpy's astype does (to nearest, even). */
  static float[] f8(int n) {
    float[] out = new float[n];
    for (int i = 0; i < n; i++) {
      out[i] = (float) (i * 0.1 + 1.0 / 3);
    }
    return out;
  }
}
