package dev.mosaic.kernels.io;

import static dev.mosaic.kernels.io.NumpyFixtures.f4;
import static dev.mosaic.kernels.io.NumpyFixtures.f8;
import static dev.mosaic.kernels.io.NumpyFixtures.file;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.mosaic.kernels.Tensor;
import dev.mosaic.test.TestSeed;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link NpzFile} and {@link TensorFiles} against archives numpy wrote. */
class NpzFileTest {
  @TempDir Path dir;

  @Test
  void readsNamedArraysInArchiveOrder() {
    Map<String, Tensor> all = NpzFile.read(file("attention.npz"));
    assertEquals(List.of("x", "in_proj_weight", "in_proj_bias", "out_proj.weight",
        "out_proj.bias"), List.copyOf(all.keySet()));
    assertArrayEquals(new int[] {2, 3, 4}, all.get("x").shape());
    assertArrayEquals(f4(24), all.get("x").data());
    assertArrayEquals(new int[] {12, 4}, all.get("in_proj_weight").shape());
    assertArrayEquals(f8(48), all.get("in_proj_weight").data());
    assertArrayEquals(f8(4), all.get("out_proj.bias").data());
    assertArrayEquals(f4(16), NpzFile.read(file("attention.npz"), "out_proj.weight").data());
  }

  @Test
  void readsCompressedArchives() {
    Map<String, Tensor> all = NpzFile.read(file("compressed.npz"));
    assertArrayEquals(f4(6), all.get("a").data());
    assertArrayEquals(new int[] {2, 3}, all.get("a").shape());
    assertArrayEquals(f8(4), all.get("b").data());
  }

  @Test
  void missingArrayListsWhatIsThere() {
    Path f = file("compressed.npz");
    TensorFileException e = assertThrows(TensorFileException.class, () -> NpzFile.read(f, "x"));
    assertEquals("tensor file " + f + ", array 'x': no such array; the archive has 2 array(s):"
        + " [a, b]", e.getMessage());
  }

  @Test
  void refusesMembersThatAreNotArrays() {
    Path f = file("not_npy.npz");
    TensorFileException e = assertThrows(TensorFileException.class, () -> NpzFile.read(f));
    assertEquals("tensor file " + f + ", array 'readme.txt': archive member is not a .npy array",
        e.getMessage());
    Path npy = file("f4_scalar.npy");
    e = assertThrows(TensorFileException.class, () -> NpzFile.read(npy));
    assertEquals(true, e.getMessage().startsWith("tensor file " + npy
        + ": not a .npz archive (a zip of .npy arrays): "), e.getMessage());
  }

  @Test
  void roundTripsThroughEachFormat() {
    Random rnd = TestSeed.random();
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    tensors.put("x", Tensor.randn(rnd, 1f, 2, 5, 8));
    tensors.put("out_proj.weight", Tensor.randn(rnd, 1f, 8, 8));
    for (String name : new String[] {"t.npz", "t.safetensors", "t"}) {
      Path f = dir.resolve(name);
      TensorFiles.write(f, tensors);
      Map<String, Tensor> back = TensorFiles.readAll(f);
      assertEquals(tensors.keySet(), back.keySet(), name);
      for (String k : tensors.keySet()) {
        assertArrayEquals(tensors.get(k).shape(), back.get(k).shape(), name + " " + k);
        assertArrayEquals(tensors.get(k).data(), back.get(k).data(), name + " " + k);
      }
      assertArrayEquals(tensors.get("x").data(), TensorFiles.read(f, "x").data(), name);
    }
  }

  @Test
  void npyHoldsExactlyOneTensor() throws IOException {
    Tensor y = Tensor.randn(TestSeed.random(), 1f, 3, 4);
    Path f = dir.resolve("y.npy");
    TensorFiles.write(f, Map.of("y", y));
    assertArrayEquals(y.data(), TensorFiles.read(f, "whatever").data());
    assertEquals(Map.of("y", y).keySet(), TensorFiles.readAll(f).keySet());
    Path two = dir.resolve("two.npy");
    TensorFileException e = assertThrows(TensorFileException.class,
        () -> TensorFiles.write(two, Map.of("a", y, "b", y)));
    assertEquals("tensor file " + two + ": a .npy file holds one array, not 2; use .npz or"
        + " .safetensors for several named tensors", e.getMessage());
    assertEquals(false, Files.exists(two));
  }

  @Test
  void formatFollowsTheExtension() {
    assertEquals(TensorFiles.Format.NPY, TensorFiles.Format.of(Path.of("a/B.NPY")));
    assertEquals(TensorFiles.Format.NPZ, TensorFiles.Format.of(Path.of("w.npz")));
    assertEquals(TensorFiles.Format.SAFETENSORS, TensorFiles.Format.of(Path.of("w.safetensors")));
    assertEquals(TensorFiles.Format.SAFETENSORS, TensorFiles.Format.of(Path.of("y")));
  }
}
