package dev.mosaic.kernels.gpu;

import static org.bytedeco.cuda.global.nvrtc.nvrtcCompileProgram;
import static org.bytedeco.cuda.global.nvrtc.nvrtcCreateProgram;
import static org.bytedeco.cuda.global.nvrtc.nvrtcDestroyProgram;
import static org.bytedeco.cuda.global.nvrtc.nvrtcGetCUBIN;
import static org.bytedeco.cuda.global.nvrtc.nvrtcGetCUBINSize;
import static org.bytedeco.cuda.global.nvrtc.nvrtcGetErrorString;
import static org.bytedeco.cuda.global.nvrtc.nvrtcGetProgramLog;
import static org.bytedeco.cuda.global.nvrtc.nvrtcGetProgramLogSize;

import org.bytedeco.cuda.nvrtc._nvrtcProgram;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.javacpp.SizeTPointer;

/**
 * Compiles a shipped {@code .cu} at run time for the GPU in front of us (the path taken when the
 * jar has no fatbin, or none for this architecture). The sources include no headers, so NVRTC
 * needs nothing but itself.
 */
final class Nvrtc {
  private Nvrtc() {}

  /** NVRTC options: the build's nvcc flags, for the device's exact architecture. */
  static String[] options(int computeCapability) {
    return new String[] {"--gpu-architecture=sm_" + computeCapability, "--std=c++17",
        "-default-device"};
  }

  /** A cubin for {@code sm_<computeCapability>}; throws with NVRTC's log when compilation fails. */
  static byte[] compile(String source, String fileName, int computeCapability) {
    _nvrtcProgram program = new _nvrtcProgram();
    check(nvrtcCreateProgram(program, new BytePointer(source), new BytePointer(fileName), 0,
        (PointerPointer<?>) null, (PointerPointer<?>) null), "nvrtcCreateProgram(" + fileName + ")");
    try {
      String[] opts = options(computeCapability);
      int r = nvrtcCompileProgram(program, opts.length, new PointerPointer<BytePointer>(opts));
      if (r != 0) {
        throw new CudaException("NVRTC could not compile " + fileName + " for sm_"
            + computeCapability + ": " + nvrtcGetErrorString(r).getString() + "\n" + log(program),
            r);
      }
      try (SizeTPointer size = new SizeTPointer(1)) {
        check(nvrtcGetCUBINSize(program, size), "nvrtcGetCUBINSize");
        byte[] cubin = new byte[Math.toIntExact(size.get())];
        check(nvrtcGetCUBIN(program, cubin), "nvrtcGetCUBIN");
        return cubin;
      }
    } finally {
      nvrtcDestroyProgram(program);
    }
  }

  private static String log(_nvrtcProgram program) {
    try (SizeTPointer size = new SizeTPointer(1)) {
      if (nvrtcGetProgramLogSize(program, size) != 0 || size.get() <= 1) {
        return "";
      }
      byte[] log = new byte[Math.toIntExact(size.get())];
      nvrtcGetProgramLog(program, log);
      return new String(log, 0, log.length - 1, java.nio.charset.StandardCharsets.UTF_8);
    }
  }

  private static void check(int result, String what) {
    if (result != 0) {
      throw new CudaException(what + " failed: " + nvrtcGetErrorString(result).getString(),
          result);
    }
  }
}
