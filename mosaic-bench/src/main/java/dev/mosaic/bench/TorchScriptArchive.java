package dev.mosaic.bench;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Writes a TorchScript module archive (the {@code .pt} zip {@code torch.jit.save} makes) for a
 * parameterless module whose {@code forward} is given as TorchScript source. The runtime compiles
 * that source when it loads the archive, so no Python is needed here, nor a PyTorch new enough to
 * know {@code scaled_dot_product_attention} at build time. Layout as written by torch 1.13
 * (archive format version 3): {@code data.pkl} (the module object, pickled), {@code constants.pkl}
 * (an empty tuple), {@code code/__torch__.py} and {@code version}.
 */
final class TorchScriptArchive {
  private TorchScriptArchive() {}

  /**
   * @param className the module's class, a Python identifier
   * @param forward the body of {@code forward(self, q, k, v) -> Tensor}, one statement a line,
   *     without indentation
   */
  static byte[] module(String className, String forward) throws IOException {
    if (!className.matches("[A-Za-z_][A-Za-z0-9_]*")) {
      throw new IllegalArgumentException("className must be a Python identifier, got '"
          + className + "'");
    }
    StringBuilder code = new StringBuilder()
        .append("class ").append(className).append("(Module):\n")
        .append("  __parameters__ = []\n")
        .append("  __buffers__ = []\n")
        .append("  training : bool\n")
        .append("  _is_full_backward_hook : Optional[bool]\n")
        .append("  def forward(self: __torch__.").append(className).append(",\n")
        .append("    q: Tensor,\n    k: Tensor,\n    v: Tensor) -> Tensor:\n");
    for (String line : forward.split("\n")) {
      code.append("    ").append(line).append('\n');
    }
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ZipOutputStream zip = new ZipOutputStream(bytes)) {
      String root = className.toLowerCase() + "/";
      put(zip, root + "data.pkl", pickledModule(className));
      put(zip, root + "code/__torch__.py", code.toString().getBytes(StandardCharsets.UTF_8));
      put(zip, root + "constants.pkl", new byte[] {(byte) 0x80, 2, ')', '.'});
      put(zip, root + "version", "3\n".getBytes(StandardCharsets.US_ASCII));
    }
    return bytes.toByteArray();
  }

  /**
   * Pickle protocol 2 of {@code __torch__.<className>} with its two attributes, as torch 1.13
   * writes it: GLOBAL, EMPTY_TUPLE, NEWOBJ, then a dict {training: True,
   * _is_full_backward_hook: None} set as its state (BUILD).
   */
  private static byte[] pickledModule(String className) throws IOException {
    ByteArrayOutputStream p = new ByteArrayOutputStream();
    p.write(new byte[] {(byte) 0x80, 2});
    p.write(("c__torch__\n" + className + "\n").getBytes(StandardCharsets.US_ASCII));
    p.write(new byte[] {'q', 0, ')', (byte) 0x81, '}', '('});
    binUnicode(p, "training");
    p.write(new byte[] {'q', 1, (byte) 0x88});
    binUnicode(p, "_is_full_backward_hook");
    p.write(new byte[] {'q', 2, 'N', 'u', 'b', 'q', 3, '.'});
    return p.toByteArray();
  }

  private static void binUnicode(OutputStream p, String s) throws IOException {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    p.write('X');
    p.write(new byte[] {(byte) b.length, (byte) (b.length >> 8), (byte) (b.length >> 16),
        (byte) (b.length >> 24)});
    p.write(b);
  }

  private static void put(ZipOutputStream zip, String name, byte[] data) throws IOException {
    ZipEntry e = new ZipEntry(name);
    zip.putNextEntry(e);
    zip.write(data);
    zip.closeEntry();
  }
}
