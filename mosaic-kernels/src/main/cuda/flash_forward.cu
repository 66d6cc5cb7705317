// Mosaic flash attention, forward partial for one (query block, key/value block) pair.
//
// The same algorithm as dev.mosaic.kernels.CpuFlashAttention, so one reading explains both:
//  * a thread block owns one tile of QUERY_TILE (64) queries of one (batch, head) and walks the
//    visible key tiles of KEY_TILE (64) keys, keeping per query a running max m and sum l
//    (online softmax) and an un-normalised output accumulator o;
//  * scores live in base 2: scale*log2(e) is folded into Q, so the exponential is exp2;
//  * the work is laid out "queries first" (the CPU kernel's transposed tiles): each query is owned
//    by a quad of 4 neighbouring threads, so its softmax statistics stay in registers and need no
//    block-wide reduction (two quad shuffles replace the CPU's column updates). Thread `sub` of a
//    quad computes the scores of keys sub, sub+4, ... and accumulates head dims sub, sub+4, ...;
//  * only the key tiles that some query of the tile can see are visited
//    (AttentionMask.visibleKeyEnd); inside a tile masked scores become -inf.
//
// Inputs are fp32, fp16 or bf16 (converted to fp32 on load); all arithmetic and both outputs
// (normalised output, log-sum-exp in natural log) are fp32. A query that sees no key writes
// output 0 and lse -inf, never NaN. Layouts follow dev.mosaic.kernels.BlockView: element
// (b, s, h, c) of q/k/v/out sits at b*batchStride + s*rowStride + h*headDim + c; lse is
// [batch][seqQ][heads]. Grouped-query attention: k/v hold kvHeads heads (kvHeads divides heads;
// MHA passes kvHeads = heads) and query head h reads K/V head h / (heads / kvHeads).
//
// Self-contained on purpose (no #include): it compiles unchanged with nvcc at build time and with
// NVRTC at run time. Kernels are extern "C" so both paths give the same symbol names:
// mosaic_flash_fwd_<dtype>_d<DMAX>, DMAX the smallest of 32/64/128/256 >= headDim.
// Dynamic shared memory: (2*64*(headDim+1) + 64*65) floats (82,688 bytes at headDim 128), so the
// host raises CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES before launching.

#define MOSAIC_QUERY_TILE 64
#define MOSAIC_KEY_TILE 64
#define MOSAIC_THREADS 256  // 4 threads per query
// Blocks per SM that ptxas must leave registers for: what shared memory allows anyway on sm_90
// (5 / 4 / 2 / 1 for the d32 / d64 / d128 / d256 variants, see ptxas-report.txt). Without it the
// K/V head count argument pushed the d32 variants from 48 to 64 registers (5 -> 4 blocks, sm_90).
#define MOSAIC_MIN_BLOCKS(DMAX) (DMAX == 32 ? 5 : DMAX == 64 ? 4 : DMAX == 128 ? 2 : 1)
#define MOSAIC_P_STRIDE (MOSAIC_KEY_TILE + 1)
#define MOSAIC_LN2 0.6931471805599453f

typedef unsigned short mosaic_u16;

__device__ __forceinline__ float mosaic_neg_inf() { return __int_as_float(0xff800000); }
__device__ __forceinline__ int mosaic_min(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ long long mosaic_min64(long long a, long long b) { return a < b ? a : b; }

struct MosaicF32 {
  typedef float T;
  static __device__ __forceinline__ float load(const float* p, long long i) { return p[i]; }
};

struct MosaicF16 {
  typedef mosaic_u16 T;
  static __device__ __forceinline__ float load(const mosaic_u16* p, long long i) {
#ifdef MOSAIC_HOST_EMULATION  // emulation/host_emulation.h: the tests run this file on the CPU
    return mosaic_host_half_to_float(p[i]);
#else
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(p[i]));
    return f;
#endif
  }
};

struct MosaicBF16 {
  typedef mosaic_u16 T;
  static __device__ __forceinline__ float load(const mosaic_u16* p, long long i) {
    return __uint_as_float(((unsigned int)p[i]) << 16);
  }
};

// Copies `rows` rows of one head (headDim d) into shared memory as fp32 times `mul`, row stride
// d+1 (no bank conflicts when a warp reads 8 rows at one column); rows past `rows` become 0.
template <typename L>
__device__ __forceinline__ void mosaic_load_tile(float* dst, const typename L::T* src,
                                                 int rowStride, int rows, int d, float mul) {
  const int stride = d + 1;
  for (int i = threadIdx.x; i < MOSAIC_KEY_TILE * d; i += MOSAIC_THREADS) {
    const int r = i / d;
    const int c = i - r * d;
    dst[r * stride + c] = r < rows ? L::load(src, (long long)r * rowStride + c) * mul : 0.0f;
  }
}

template <typename L, int DMAX>
__device__ __forceinline__ void mosaic_flash_forward(
    const typename L::T* __restrict__ q, long long qBatchStride, int qRowStride,
    const typename L::T* __restrict__ k, long long kBatchStride, int kRowStride,
    const typename L::T* __restrict__ v, long long vBatchStride, int vRowStride,
    float* __restrict__ out, long long oBatchStride, int oRowStride, float* __restrict__ lse,
    int seqQ, int seqK, int heads, int kvHeads, int d, float qScale,
    int causal, long long queryOffset, long long keyOffset, long long keyLimit, int b) {
  extern __shared__ float smem[];
  const int stride = d + 1;
  float* qs = smem;                                // Q tile, scaled: QUERY_TILE x stride
  float* kv = qs + MOSAIC_QUERY_TILE * stride;     // K tile, then V tile: KEY_TILE x stride
  float* ps = kv + MOSAIC_KEY_TILE * stride;       // probabilities: QUERY_TILE x P_STRIDE

  const int qi = threadIdx.x >> 2;   // query row of this thread's quad
  const int sub = threadIdx.x & 3;   // keys sub+4j, head dims sub+4i
  const int h = blockIdx.y;
  // Grouped-query attention: consecutive groups of heads/kvHeads query heads share one K/V head
  // (AttentionKernel.kvHead); K/V rows hold kvHeads heads (their row strides say so).
  const int kvh = h / (heads / kvHeads);
  const int q0 = blockIdx.x * MOSAIC_QUERY_TILE;
  const int rows = mosaic_min(MOSAIC_QUERY_TILE, seqQ - q0);
  const float negInf = mosaic_neg_inf();

  mosaic_load_tile<L>(qs, q + b * qBatchStride + (long long)q0 * qRowStride + (long long)h * d,
                      qRowStride, rows, d, qScale);

  // Keys [0, keyEnd) may be visible to some query of the tile (AttentionMask.visibleKeyEnd).
  long long end = seqK;
  end = mosaic_min64(end, keyLimit - keyOffset);
  if (causal) {
    end = mosaic_min64(end, queryOffset + q0 + rows - keyOffset);
  }
  const int keyEnd = end < 0 ? 0 : (int)end;
  const long long queryPos = queryOffset + q0 + qi;

  float m = negInf;   // running max of this query's scores (base 2)
  float l = 0.0f;     // running sum of 2^(s - m)
  float o[DMAX / 4];  // head dims sub, sub+4, ...: un-normalised output
#pragma unroll
  for (int i = 0; i < DMAX / 4; i++) {
    o[i] = 0.0f;
  }

  for (int j0 = 0; j0 < keyEnd; j0 += MOSAIC_KEY_TILE) {
    const int valid = mosaic_min(MOSAIC_KEY_TILE, keyEnd - j0);
    __syncthreads();  // Q tile written / previous V tile consumed
    mosaic_load_tile<L>(kv, k + b * kBatchStride + (long long)j0 * kRowStride + (long long)kvh * d,
                        kRowStride, valid, d, 1.0f);
    __syncthreads();

    // Scores of this query against keys sub + 4j of the tile.
    float s[MOSAIC_KEY_TILE / 4];
#pragma unroll
    for (int j = 0; j < MOSAIC_KEY_TILE / 4; j++) {
      s[j] = 0.0f;
    }
    const float* qrow = qs + qi * stride;
    for (int c = 0; c < d; c++) {
      const float qc = qrow[c];
#pragma unroll
      for (int j = 0; j < MOSAIC_KEY_TILE / 4; j++) {
        s[j] = fmaf(qc, kv[(sub + 4 * j) * stride + c], s[j]);
      }
    }

    float tileMax = negInf;
#pragma unroll
    for (int j = 0; j < MOSAIC_KEY_TILE / 4; j++) {
      const int key = sub + 4 * j;
      const long long keyPos = keyOffset + j0 + key;
      if (key >= valid || keyPos >= keyLimit || (causal && keyPos > queryPos)) {
        s[j] = negInf;
      }
      tileMax = fmaxf(tileMax, s[j]);
    }
    tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, 1));
    tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, 2));

    const float mNew = fmaxf(m, tileMax);
    // A query that has seen no key yet keeps max -inf: shift by 0 so 2^(-inf) stays 0.
    const float shift = mNew == negInf ? 0.0f : mNew;
    const float alpha = m == mNew ? 1.0f : (m == negInf ? 0.0f : exp2f(m - mNew));
    float tileSum = 0.0f;
    float* prow = ps + qi * MOSAIC_P_STRIDE;
#pragma unroll
    for (int j = 0; j < MOSAIC_KEY_TILE / 4; j++) {
      const float p = exp2f(s[j] - shift);
      prow[sub + 4 * j] = p;
      tileSum += p;
    }
    tileSum += __shfl_xor_sync(0xffffffffu, tileSum, 1);
    tileSum += __shfl_xor_sync(0xffffffffu, tileSum, 2);
    l = l * alpha + tileSum;
    m = mNew;
#pragma unroll
    for (int i = 0; i < DMAX / 4; i++) {
      o[i] *= alpha;
    }

    __syncthreads();  // everyone is done with the K tile (and wrote its probabilities)
    mosaic_load_tile<L>(kv, v + b * vBatchStride + (long long)j0 * vRowStride + (long long)kvh * d,
                        vRowStride, valid, d, 1.0f);
    __syncthreads();

    // o += P_tile . V_tile for head dims sub + 4i.
    for (int j = 0; j < valid; j++) {
      const float p = prow[j];
      const float* vrow = kv + j * stride;
#pragma unroll
      for (int i = 0; i < DMAX / 4; i++) {
        const int c = sub + 4 * i;
        if (c < d) {
          o[i] = fmaf(p, vrow[c], o[i]);
        }
      }
    }
  }

  if (qi < rows) {
    float* orow = out + b * oBatchStride + (long long)(q0 + qi) * oRowStride + (long long)h * d;
    const float inv = l == 0.0f ? 0.0f : 1.0f / l;
#pragma unroll
    for (int i = 0; i < DMAX / 4; i++) {
      const int c = sub + 4 * i;
      if (c < d) {
        orow[c] = o[i] * inv;
      }
    }
    if (sub == 0) {
      lse[((long long)b * seqQ + q0 + qi) * heads + h] =
          l == 0.0f ? negInf : (m + log2f(l)) * MOSAIC_LN2;
    }
  }
}

#define MOSAIC_FLASH_KERNEL(NAME, LOADER, DMAX)                                                   \
  extern "C" __global__ void                                                                      \
  __launch_bounds__(MOSAIC_THREADS, MOSAIC_MIN_BLOCKS(DMAX)) NAME(                                \
      const LOADER::T* __restrict__ q, long long qBatchStride, int qRowStride,                     \
      const LOADER::T* __restrict__ k, long long kBatchStride, int kRowStride,                     \
      const LOADER::T* __restrict__ v, long long vBatchStride, int vRowStride,                     \
      float* __restrict__ out, long long oBatchStride, int oRowStride, float* __restrict__ lse,    \
      int seqQ, int seqK, int heads, int kvHeads, int d, float qScale,                             \
      int causal, long long queryOffset, long long keyOffset, long long keyLimit) {                \
    mosaic_flash_forward<LOADER, DMAX>(q, qBatchStride, qRowStride, k, kBatchStride, kRowStride,  \
                                       v, vBatchStride, vRowStride, out, oBatchStride, oRowStride, \
                                       lse, seqQ, seqK, heads, kvHeads, d, qScale, causal,         \
                                       queryOffset, keyOffset, keyLimit, (int)blockIdx.z);        \
  }

// Varlen: sequences packed along seq, cu_seqlens style (dev.mosaic.kernels.VarlenSequences).
// Grid (query tiles of the longest sequence, heads, batch * sequences); a block past its
// sequence's last tile returns before any barrier (the whole block alike). The rest is the kernel
// above on the sequence's own rows, its key padding validKeys[s] folded into the key bound; lse is
// [batch][query row][heads].
template <typename L, int DMAX>
__device__ __forceinline__ void mosaic_flash_forward_varlen(
    const typename L::T* __restrict__ q, long long qBatchStride, int qRowStride,
    const typename L::T* __restrict__ k, long long kBatchStride, int kRowStride,
    const typename L::T* __restrict__ v, long long vBatchStride, int vRowStride,
    float* __restrict__ out, long long oBatchStride, int oRowStride, float* __restrict__ lse,
    const int* __restrict__ cuQ, const int* __restrict__ cuK, const int* __restrict__ validKeys,
    int hasValidKeys, int sequences, int totalQ, int heads, int kvHeads, int d, float qScale,
    int causal, long long queryOffset, long long keyOffset, long long keyLimit) {
  const int s = blockIdx.z % sequences;
  const int b = blockIdx.z / sequences;
  const int q0 = cuQ[s];
  const int seqQ = cuQ[s + 1] - q0;
  if ((int)blockIdx.x * MOSAIC_QUERY_TILE >= seqQ) {
    return;
  }
  const int k0 = cuK[s];
  const long long limit =
      hasValidKeys ? mosaic_min64(keyLimit, keyOffset + validKeys[s]) : keyLimit;
  mosaic_flash_forward<L, DMAX>(
      q + b * qBatchStride + (long long)q0 * qRowStride, 0, qRowStride,
      k + b * kBatchStride + (long long)k0 * kRowStride, 0, kRowStride,
      v + b * vBatchStride + (long long)k0 * vRowStride, 0, vRowStride,
      out + b * oBatchStride + (long long)q0 * oRowStride, 0, oRowStride,
      lse + ((long long)b * totalQ + q0) * heads, seqQ, cuK[s + 1] - k0, heads, kvHeads, d, qScale,
      causal, queryOffset, keyOffset, limit, 0);
}

#define MOSAIC_FLASH_VARLEN_KERNEL(NAME, LOADER, DMAX)                                            \
  extern "C" __global__ void                                                                      \
  __launch_bounds__(MOSAIC_THREADS, MOSAIC_MIN_BLOCKS(DMAX)) NAME(                                \
      const LOADER::T* __restrict__ q, long long qBatchStride, int qRowStride,                     \
      const LOADER::T* __restrict__ k, long long kBatchStride, int kRowStride,                     \
      const LOADER::T* __restrict__ v, long long vBatchStride, int vRowStride,                     \
      float* __restrict__ out, long long oBatchStride, int oRowStride, float* __restrict__ lse,    \
      const int* __restrict__ cuQ, const int* __restrict__ cuK,                                    \
      const int* __restrict__ validKeys, int hasValidKeys, int sequences, int totalQ, int heads,   \
      int kvHeads, int d, float qScale, int causal, long long queryOffset, long long keyOffset,    \
      long long keyLimit) {                                                                        \
    mosaic_flash_forward_varlen<LOADER, DMAX>(q, qBatchStride, qRowStride, k, kBatchStride,       \
                                              kRowStride, v, vBatchStride, vRowStride, out,        \
                                              oBatchStride, oRowStride, lse, cuQ, cuK, validKeys,  \
                                              hasValidKeys, sequences, totalQ, heads, kvHeads, d,  \
                                              qScale, causal, queryOffset, keyOffset, keyLimit);   \
  }

MOSAIC_FLASH_VARLEN_KERNEL(mosaic_flash_fwd_varlen_f32_d32, MosaicF32, 32)
MOSAIC_FLASH_VARLEN_KERNEL(mosaic_flash_fwd_varlen_f32_d64, MosaicF32, 64)
MOSAIC_FLASH_VARLEN_KERNEL(mosaic_flash_fwd_varlen_f32_d128, MosaicF32, 128)
MOSAIC_FLASH_VARLEN_KERNEL(mosaic_flash_fwd_varlen_f32_d256, MosaicF32, 256)

MOSAIC_FLASH_KERNEL(mosaic_flash_fwd_f32_d32, MosaicF32, 32)
MOSAIC_FLASH_KERNEL(mosaic_flash_fwd_f32_d64, MosaicF32, 64)
MOSAIC_FLASH_KERNEL(mosaic_flash_fwd_f32_d128, MosaicF32, 128)
MOSAIC_FLASH_KERNEL(mosaic_flash_fwd_f32_d256, MosaicF32, 256)
MOSAIC_FLASH_KERNEL(mosaic_flash_fwd_f16_d32, MosaicF16, 32)
MOSAIC_FLASH_KERNEL(mosaic_flash_fwd_f16_d64, MosaicF16, 64)
MOSAIC_FLASH_KERNEL(mosaic_flash_fwd_f16_d128, MosaicF16, 128)
MOSAIC_FLASH_KERNEL(mosaic_flash_fwd_f16_d256, MosaicF16, 256)
MOSAIC_FLASH_KERNEL(mosaic_flash_fwd_bf16_d32, MosaicBF16, 32)
MOSAIC_FLASH_KERNEL(mosaic_flash_fwd_bf16_d64, MosaicBF16, 64)
MOSAIC_FLASH_KERNEL(mosaic_flash_fwd_bf16_d128, MosaicBF16, 128)
MOSAIC_FLASH_KERNEL(mosaic_flash_fwd_bf16_d256, MosaicBF16, 256)
