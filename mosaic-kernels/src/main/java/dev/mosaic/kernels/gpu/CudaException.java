package dev.mosaic.kernels.gpu;

/** A CUDA driver, NVRTC or NCCL call failed; the message names the call and the error. */
public class CudaException extends RuntimeException {
  private final int code;

  public CudaException(String message, int code) {
    super(message);
    this.code = code;
  }

  public CudaException(String message, Throwable cause) {
    super(message, cause);
    this.code = -1;
  }

  /** The library's error code, -1 when there is none. */
  public int code() {
    return code;
  }
}
