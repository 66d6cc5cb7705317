package dev.mosaic.jupyter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.dflib.jjava.jupyter.kernel.display.DisplayData;
import org.dflib.jjava.jupyter.kernel.display.mime.MIMEType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KernelUnitTest {

  @Test
  void evaluatesJavaAndKeepsState() {
    MosaicKernel k = MosaicKernel.builder().build();
    assertEquals(null, k.evalRaw("int a = 40;"));
    assertEquals(42, k.evalRaw("int b = 2;\na + b"));
    MosaicKernel.CellException e = assertThrows(MosaicKernel.CellException.class,
        () -> k.evalRaw("check(a == 1, \"a is one\");"));
    assertTrue(e.getMessage().contains("a is one"), e.getMessage());
    assertThrows(MosaicKernel.CellException.class, () -> k.evalRaw("int c = undefinedThing;"));
  }

  @Test
  void imagesBecomePng() {
    DisplayData d = Displays.of(new BufferedImage(20, 10, BufferedImage.TYPE_INT_RGB));
    assertNotNull(d.getData(MIMEType.parse("image/png")));
    assertEquals("7", Displays.of(7).getData(MIMEType.TEXT_PLAIN));
  }

  @Test
  void classpathMagicResolvesGlobsAndListings(@TempDir Path dir) throws Exception {
    Files.writeString(dir.resolve("a.jar"), "x");
    Files.writeString(dir.resolve("b.jar"), "x");
    Files.createDirectories(dir.resolve("classes"));
    Files.writeString(dir.resolve("cp.txt"), dir.resolve("classes") + java.io.File.pathSeparator
        + dir.resolve("a.jar"));
    assertEquals(2, MosaicKernel.resolve(List.of("*.jar"), dir, true).size());
    assertEquals(2, MosaicKernel.resolve(List.of("@cp.txt"), dir, false).size());
    assertEquals(2, MosaicKernel.resolve(List.of("."), dir, true).size());
    assertThrows(MosaicKernel.CellException.class,
        () -> MosaicKernel.resolve(List.of("missing/*.jar"), dir, true));
    assertEquals(List.of("%jars", "a b", "c"), MosaicKernel.splitArgs("%jars \"a b\" c"));
  }

  @Test
  void kernelJsonHasTheFlags(@TempDir Path dir) throws Exception {
    Path home = Files.createDirectories(dir.resolve("home/conf"));
    Files.writeString(home.resolve("jvm.options"), "# c\n--add-modules=jdk.incubator.vector\n\n");
    Path json = KernelInstaller.install(dir.resolve("k"), "/usr/bin/java", home.getParent(),
        "x.jar", "Java (Mosaic)");
    String text = Files.readString(json);
    assertTrue(text.contains("\"--add-modules=jdk.incubator.vector\""), text);
    assertTrue(text.contains("\"--add-opens=jdk.jshell/jdk.jshell=ALL-UNNAMED\""), text);
    assertTrue(text.contains("\"{connection_file}\""), text);
  }
}
