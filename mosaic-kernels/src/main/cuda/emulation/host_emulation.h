// Runs Mosaic's CUDA kernels on the CPU, one std::thread per CUDA thread, so that their indexing,
// masking, online softmax and warp shuffles can be checked against the Java reference on machines
// without a GPU (dev.mosaic.kernels.gpu.KernelHostEmulationTest). Not a CUDA emulator: it provides
// exactly what flash_forward.cu and lse_merge.cu use — threadIdx/blockIdx, __syncthreads,
// __syncwarp, __shfl_xor_sync over full warps, dynamic shared memory, the bit casts and the
// fp16 load — with C++20 barriers. Blocks run one after another; the threads of a block run
// concurrently, so a missing __syncthreads shows up as a data race in the results.
#pragma once

#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <math.h>
#include <memory>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__
#define __launch_bounds__(...)

struct mosaic_dim3 {
  unsigned x = 0, y = 0, z = 0;
};
inline thread_local mosaic_dim3 threadIdx;
inline thread_local mosaic_dim3 blockIdx;

namespace mosaic_emul {
struct Block {
  explicit Block(int threads) : all(threads), exchange(threads) {
    for (int w = 0; w < threads / 32; w++) {
      warps.emplace_back(std::make_unique<std::barrier<>>(32));
    }
  }
  std::barrier<> all;
  std::vector<std::unique_ptr<std::barrier<>>> warps;
  std::vector<float> exchange;  // one slot per thread for __shfl_xor_sync
};
inline Block* block = nullptr;
}  // namespace mosaic_emul

inline void __syncthreads() { mosaic_emul::block->all.arrive_and_wait(); }

inline void __syncwarp(unsigned = 0xffffffffu) {
  mosaic_emul::block->warps[threadIdx.x / 32]->arrive_and_wait();
}

// All 32 lanes of the warp must call it (true in the Mosaic kernels).
inline float __shfl_xor_sync(unsigned, float v, int laneMask) {
  std::vector<float>& x = mosaic_emul::block->exchange;
  const unsigned t = threadIdx.x;
  x[t] = v;
  __syncwarp();
  const float r = x[(t & ~31u) | ((t & 31u) ^ (unsigned)laneMask)];
  __syncwarp();
  return r;
}

inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

inline float __uint_as_float(unsigned i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

// What cvt.f32.f16 does: exact widening of IEEE binary16.
inline float mosaic_host_half_to_float(unsigned short h) {
  const unsigned sign = (unsigned)(h & 0x8000u) << 16;
  const unsigned exp = (h >> 10) & 0x1fu;
  const unsigned mant = h & 0x3ffu;
  if (exp == 0x1f) {
    return __uint_as_float(sign | 0x7f800000u | (mant << 13));
  }
  if (exp == 0) {
    const float v = std::ldexp((float)mant, -24);
    return sign ? -v : v;
  }
  return __uint_as_float(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}
