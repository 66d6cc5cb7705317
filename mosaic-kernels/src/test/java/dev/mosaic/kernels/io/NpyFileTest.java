package dev.mosaic.kernels.io;

import static dev.mosaic.kernels.io.NumpyFixtures.f4;
import static dev.mosaic.kernels.io.NumpyFixtures.f8;
import static dev.mosaic.kernels.io.NumpyFixtures.file;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.test.TestSeed;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link NpyFile} against files numpy wrote (tools/fixtures/numpy_fixtures.py). */
class NpyFileTest {
  @TempDir Path dir;

  @Test
  void readsFloat32AsWritten() {
    Tensor t = NpyFile.read(file("f4_2x3x4.npy"));
    assertArrayEquals(new int[] {2, 3, 4}, t.shape());
    assertArrayEquals(f4(24), t.data());
  }

  @Test
  void readsFloat64RoundedToNearestFloat32() {
    Tensor t = NpyFile.read(file("f8_3x5.npy"));
    assertArrayEquals(new int[] {3, 5}, t.shape());
    assertArrayEquals(f8(15), t.data());
  }

  @Test
  void readsScalarEmptyBigEndianAndVersion2() {
    Tensor scalar = NpyFile.read(file("f4_scalar.npy"));
    assertArrayEquals(new int[0], scalar.shape());
    assertArrayEquals(new float[] {2.5f}, scalar.data());
    Tensor empty = NpyFile.read(file("f4_0x3.npy"));
    assertArrayEquals(new int[] {0, 3}, empty.shape());
    assertArrayEquals(f4(4), NpyFile.read(file("f4_big_endian_4.npy")).data());
    Tensor v2 = NpyFile.read(file("f4_v2_2x2.npy"));
    assertArrayEquals(new int[] {2, 2}, v2.shape());
    assertArrayEquals(f4(4), v2.data());
  }

  @Test
  void writesTheBytesNumpyWrites() throws IOException {
    for (String name : new String[] {"f4_2x3x4.npy", "f4_scalar.npy", "f4_0x3.npy"}) {
      Tensor t = NpyFile.read(file(name));
      Path out = dir.resolve(name);
      NpyFile.write(out, t);
      assertArrayEquals(Files.readAllBytes(file(name)), Files.readAllBytes(out), name);
    }
  }

  @Test
  void roundTripsRandomShapes() {
    Random rnd = TestSeed.random();
    for (int trial = 0; trial < 20; trial++) {
      int[] shape = new int[rnd.nextInt(5)];
      for (int i = 0; i < shape.length; i++) {
        shape[i] = rnd.nextInt(7);
      }
      Tensor t = Tensor.randn(rnd, 3f, shape);
      Path out = dir.resolve("t" + trial + ".npy");
      NpyFile.write(out, t);
      Tensor back = NpyFile.read(out);
      assertArrayEquals(t.shape(), back.shape());
      assertArrayEquals(t.data(), back.data());
    }
  }

  @Test
  void largerThanOneChunk() {
    Tensor t = Tensor.randn(TestSeed.random(), 1f, 3, 100_003);
    Path out = dir.resolve("big.npy");
    NpyFile.write(out, t);
    assertArrayEquals(t.data(), NpyFile.read(out).data());
  }

  @Test
  void refusesWhatItCannotReadInOneLine() {
    assertRefused("fortran_3x4.npy", "array is in Fortran (column-major) order;"
        + " save np.ascontiguousarray(a) instead");
    assertRefused("int64_5.npy", "dtype '<i8' is not supported (expected float32 '<f4' or"
        + " float64 '<f8'); save a.astype(np.float32)");
    assertRefused("object_2.npy", "holds Python objects (dtype '|O', pickled); Mosaic reads"
        + " float arrays only and never unpickles: save np.asarray(a, dtype=np.float32)");
    assertRefused("structured_2.npy", "structured dtype (a record array) is not supported;"
        + " save each field as its own float32 array");
    assertRefused("truncated_2x3x4.npy", "holds 88 data bytes, but <f4[2, 3, 4] needs 96"
        + " (truncated)");
    assertRefused("attention.npz", "not a .npy array: it does not start with \\x93NUMPY");
  }

  @Test
  void missingFileIsOneLine() {
    Path missing = dir.resolve("nope.npy");
    TensorFileException e = assertThrows(TensorFileException.class, () -> NpyFile.read(missing));
    assertEquals("tensor file " + missing + ": no such file", e.getMessage());
  }

  @Test
  void failedWriteLeavesNoTemporaryFile() throws IOException {
    Path target = dir.resolve("sub");
    Files.createDirectory(target); // a directory where the file should go: the move fails
    Files.writeString(target.resolve("keep"), "x");
    assertThrows(TensorFileException.class, () -> NpyFile.write(target, Tensor.zeros(2)));
    try (var files = Files.list(dir)) {
      assertEquals(1, files.count(), "only the directory is left");
    }
  }

  private static void assertRefused(String name, String problem) {
    Path f = file(name);
    TensorFileException e = assertThrows(TensorFileException.class, () -> NpyFile.read(f));
    assertEquals("tensor file " + f + ": " + problem, e.getMessage());
    assertTrue(!e.getMessage().contains("\n"));
  }
}
