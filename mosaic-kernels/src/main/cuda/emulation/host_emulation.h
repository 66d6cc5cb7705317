// Runs Mosaic's CUDA kernels on the CPU, one std::thread per CUDA thread, so that their indexing,
// masking, online softmax and warp shuffles can be checked against the Java reference on machines
// without a GPU (dev.mosaic.kernels.gpu.KernelHostEmulationTest, TensorCore*EmulationTest, ...).
// Not a CUDA emulator: it provides exactly what flash_forward.cu, flash_forward_tc.cu,
// lse_merge.cu and convert.cu use — threadIdx/blockIdx/gridDim, __syncthreads, __syncwarp,
// __shfl_xor_sync over full warps, dynamic shared memory, the bit casts, the fp16 load, fp16/bf16
// rounding, whole-fragment WMMA and deferred cp.async (below) — with C++20 barriers. Blocks run
// one after another; the threads of a block run concurrently, so a missing __syncthreads shows up
// as a data race in the results.
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
inline mosaic_dim3 gridDim;  // the same for every thread of a launch

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

inline unsigned __float_as_uint(float f) {
  unsigned i;
  std::memcpy(&i, &f, sizeof i);
  return i;
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

// What cvt.rn.f16.f32 does: round to nearest even binary16 (GpuDtype.floatToHalf).
inline unsigned short mosaic_host_float_to_half(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const unsigned sign = (bits >> 16) & 0x8000u;
  const int exp = (int)((bits >> 23) & 0xffu);
  const unsigned mant = bits & 0x7fffffu;
  if (exp == 0xff) {
    return (unsigned short)(sign | 0x7c00u | (mant != 0 ? 0x200u | (mant >> 13) : 0u));
  }
  const int e = exp - 127 + 15;
  if (e >= 0x1f) {
    return (unsigned short)(sign | 0x7c00u);
  }
  if (e <= 0) {
    if (e < -10) {
      return (unsigned short)sign;
    }
    const unsigned m = mant | 0x800000u;
    const int shift = 14 - e;
    unsigned half = m >> shift;
    const unsigned rem = m & ((1u << shift) - 1);
    const unsigned mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u) != 0)) {
      half++;
    }
    return (unsigned short)(sign | half);
  }
  unsigned half = ((unsigned)e << 10) | (mant >> 13);
  const unsigned rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u) != 0)) {
    half++;
  }
  return (unsigned short)(sign | half);
}

// What cvt.rn.bf16.f32 does: the top 16 bits, rounded to nearest even (GpuDtype.floatToBf16).
inline unsigned short mosaic_host_float_to_bf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x7fffffu) != 0) {
    return (unsigned short)((bits >> 16) | 0x40u);
  }
  return (unsigned short)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

// ---- WMMA (m16n16k16, fp32 accumulators) and cp.async, for flash_forward_tc.cu. ----------------
// Semantics per the CUDA programming guide: load/store/mma are warp-collective ("_sync": every
// lane arrives before the operation) and a fragment's mapping to lanes is unspecified. Here every
// lane holds the whole 16x16 tile, which a kernel cannot tell apart as long as it only loads,
// multiplies and stores whole fragments (the Mosaic kernel never indexes fragment elements).
// Stores are split across lanes with no barrier after them, as on the GPU: a kernel that reads
// stored values from another lane without __syncwarp() races here too.
namespace mosaic_emul {
struct Tile {
  float x[256];  // [row][col]; B fragments as [k][n] whatever their memory layout
};

inline void wmma_fill(Tile& t, float v) {
  for (float& e : t.x) {
    e = v;
  }
}

// A (row-major: A(m,k) = p[m*ld + k]) or B (col-major: B(k,n) = p[n*ld + k]; row-major:
// B(k,n) = p[k*ld + n]), 16-bit elements widened exactly by cvt.
template <typename T, typename Cvt>
inline void wmma_load_ab(Tile& t, const T* p, int ld, bool colMajor, Cvt cvt) {
  __syncwarp();
  for (int r = 0; r < 16; r++) {
    for (int c = 0; c < 16; c++) {
      t.x[r * 16 + c] = cvt(colMajor ? p[c * ld + r] : p[r * ld + c]);
    }
  }
}

inline void wmma_load_c(Tile& t, const float* p, int ld) {
  __syncwarp();
  for (int r = 0; r < 16; r++) {
    for (int c = 0; c < 16; c++) {
      t.x[r * 16 + c] = p[r * ld + c];
    }
  }
}

// c += a.b; fp16/bf16 products are exact in fp32, the sum is fp32 (its order on the GPU is
// unspecified; here k ascending).
inline void wmma_mma(Tile& c, const Tile& a, const Tile& b) {
  for (int m = 0; m < 16; m++) {
    for (int n = 0; n < 16; n++) {
      float acc = c.x[m * 16 + n];
      for (int k = 0; k < 16; k++) {
        acc = std::fmaf(a.x[m * 16 + k], b.x[k * 16 + n], acc);
      }
      c.x[m * 16 + n] = acc;
    }
  }
}

inline void wmma_store_c(float* p, const Tile& t, int ld) {
  __syncwarp();  // every lane has finished the loads that fed this tile
  for (int i = (int)(threadIdx.x & 31u); i < 256; i += 32) {
    p[(i >> 4) * ld + (i & 15)] = t.x[i];
  }
}

// cp.async: copies are deferred until the issuing thread waits, the latest a GPU may complete
// them, so a kernel that reads a tile before waiting (and a barrier) sees the old contents.
struct PendingCopy {
  void* dst;
  const void* src;
  int srcBytes;
};
inline thread_local std::vector<PendingCopy> pendingCopies;

inline void cp_async16(void* dst, const void* src, int srcBytes) {
  pendingCopies.push_back({dst, src, srcBytes});
}

inline void cp_async_wait_all() {
  for (const PendingCopy& c : pendingCopies) {
    std::memset(c.dst, 0, 16);
    std::memcpy(c.dst, c.src, (size_t)c.srcBytes);
  }
  pendingCopies.clear();
}
}  // namespace mosaic_emul
