// Mosaic fp32 -> fp16 / bf16 conversion on the device, so that fp32 host tensors are copied up
// once and rounded where they are used, not element by element on the host per call.
// Rounding: to nearest even, as GpuDtype.floatToHalf / floatToBf16 and PyTorch's .half() /
// .bfloat16() do; fp16 overflow gives infinity, NaN stays NaN.
//
// Kernels: mosaic_convert_f32_to_f16 and mosaic_convert_f32_to_bf16 (src, dst, n): dst[i] = src[i]
// rounded, i < n; contiguous buffers, any grid (a grid-stride loop), 256 threads per block.
// bf16 rounds with integer arithmetic (no cvt.rn.bf16.f32, which needs sm_80): the module also
// loads through NVRTC on older GPUs, whose fp32 flash kernel reads bf16 too.
//
// Self-contained (no #include): compiles with nvcc at build time and NVRTC at run time.

#define MOSAIC_CONVERT_THREADS 256

typedef unsigned short mosaic_cvt_u16;

__device__ __forceinline__ mosaic_cvt_u16 mosaic_cvt_f16(float x) {
#ifdef MOSAIC_HOST_EMULATION
  return mosaic_host_float_to_half(x);
#else
  mosaic_cvt_u16 h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x));
  return h;
#endif
}

__device__ __forceinline__ mosaic_cvt_u16 mosaic_cvt_bf16(float x) {
  const unsigned bits = __float_as_uint(x);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x7fffffu) != 0) {
    return (mosaic_cvt_u16)((bits >> 16) | 0x40u);  // NaN: keep it quiet and non-zero
  }
  return (mosaic_cvt_u16)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

extern "C" __global__ void __launch_bounds__(MOSAIC_CONVERT_THREADS)
mosaic_convert_f32_to_f16(const float* __restrict__ src, mosaic_cvt_u16* __restrict__ dst,
                          long long n) {
  const long long step = (long long)gridDim.x * MOSAIC_CONVERT_THREADS;
  for (long long i = (long long)blockIdx.x * MOSAIC_CONVERT_THREADS + threadIdx.x; i < n;
       i += step) {
    dst[i] = mosaic_cvt_f16(src[i]);
  }
}

extern "C" __global__ void __launch_bounds__(MOSAIC_CONVERT_THREADS)
mosaic_convert_f32_to_bf16(const float* __restrict__ src, mosaic_cvt_u16* __restrict__ dst,
                           long long n) {
  const long long step = (long long)gridDim.x * MOSAIC_CONVERT_THREADS;
  for (long long i = (long long)blockIdx.x * MOSAIC_CONVERT_THREADS + threadIdx.x; i < n;
       i += step) {
    dst[i] = mosaic_cvt_bf16(src[i]);
  }
}
