// Mosaic flash attention forward on tensor cores: fp16/bf16 Q/K/V, fp32 accumulation, fp32
// log-sum-exp, output fp32 (or the input's 16-bit type on request). Same contract, masks and
// fully-masked-row rules as flash_forward.cu, which stays the fallback and the reference.
//
// Layout of the work (64 queries x 64 keys per tile, 4 warps of 32 threads):
//  * warp w owns query rows 16w..16w+15 of the block's tile;
//  * S = Q.K^T runs on tensor cores through WMMA (m16n16k16, fp32 accumulators) and is stored to
//    shared memory; the online softmax then reads S from shared memory, two lanes per query row,
//    and writes P (rounded to the input type) back. O lives in shared memory in fp32: the lanes
//    rescale their rows by alpha, then O += P.V runs on tensor cores (load, mma, store). So no
//    line of this file depends on how a fragment maps to lanes, which is what lets the host
//    emulation (emulation/host_emulation.h) run this exact file;
//  * K and V tiles are loaded with cp.async on sm_80+: V(j) streams in while S and the softmax of
//    tile j run, K(j+1) while P.V of tile j runs (one buffer each, ordered by wait + barrier);
//  * head dims are padded with zeros to a multiple of 16 (the WMMA k), rows past the sequence
//    end with zeros; masked scores are -inf, so padding never reaches the output.
//
// Kernels: mosaic_flash_tc_<f16|bf16>_d<DMAX>, DMAX the smallest of 32/64/128/256 >= headDim,
// and mosaic_flash_tc_varlen_<f16|bf16>_d<DMAX> for packed sequences (cu_seqlens).
// Arguments: those of the matching flash_forward.cu kernel, then `int outHalf` (1: out holds the
// input's 16-bit type, 0: fp32). 128 threads per block, grid (query tiles, heads, batch; varlen:
// batch * sequences). Dynamic shared memory:
// 640*DMAX + 30720 bytes (51,200 / 71,680 / 112,640 / 194,560), see TensorCoreLaunch.
// Self-contained (no #include) so that NVRTC compiles it as it is, like flash_forward.cu.

#define MOSAIC_TC_QUERY_TILE 64
#define MOSAIC_TC_KEY_TILE 64
#define MOSAIC_TC_THREADS 128
#define MOSAIC_TC_S_LD (MOSAIC_TC_KEY_TILE + 4)  // fp32 scores, row stride in floats
#define MOSAIC_TC_P_LD (MOSAIC_TC_KEY_TILE + 8)  // 16-bit probabilities, row stride
#define MOSAIC_TC_LN2 0.6931471805599453f

typedef unsigned short mosaic_tc_u16;

__device__ __forceinline__ float mosaic_tc_neg_inf() { return __int_as_float(0xff800000); }
__device__ __forceinline__ int mosaic_tc_min(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ long long mosaic_tc_min64(long long a, long long b) {
  return a < b ? a : b;
}

// ---- The thin wrapper: WMMA m16n16k16 on shared memory, and cp.async. ------------------------
// On the GPU these are the PTX wmma / cp.async instructions (what <mma.h> emits, without the
// header); under MOSAIC_HOST_EMULATION the shim's whole-fragment versions.
#ifdef MOSAIC_HOST_EMULATION
typedef mosaic_emul::Tile MosaicTcFragC;
#else
struct MosaicTcFragC {
  float x[8];
};
__device__ __forceinline__ unsigned mosaic_tc_smem_addr(const void* p) {
  unsigned a;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
  return a;
}
#define MOSAIC_TC_C8(f) "=f"(f.x[0]), "=f"(f.x[1]), "=f"(f.x[2]), "=f"(f.x[3]), \
    "=f"(f.x[4]), "=f"(f.x[5]), "=f"(f.x[6]), "=f"(f.x[7])
#define MOSAIC_TC_IN8(f, c) c(f.x[0]), c(f.x[1]), c(f.x[2]), c(f.x[3]), \
    c(f.x[4]), c(f.x[5]), c(f.x[6]), c(f.x[7])
#define MOSAIC_TC_IN4(f, c) c(f.x[0]), c(f.x[1]), c(f.x[2]), c(f.x[3])
#endif

__device__ __forceinline__ void mosaic_tc_zero(MosaicTcFragC& c) {
#ifdef MOSAIC_HOST_EMULATION
  mosaic_emul::wmma_fill(c, 0.0f);
#else
#pragma unroll
  for (int i = 0; i < 8; i++) {
    c.x[i] = 0.0f;
  }
#endif
}

// fp32 accumulator tile, row-major, row stride ld floats.
__device__ __forceinline__ void mosaic_tc_load_c(MosaicTcFragC& c, const float* p, int ld) {
#ifdef MOSAIC_HOST_EMULATION
  mosaic_emul::wmma_load_c(c, p, ld);
#else
  asm volatile("wmma.load.c.sync.aligned.row.m16n16k16.shared.f32 "
               "{%0, %1, %2, %3, %4, %5, %6, %7}, [%8], %9;"
               : MOSAIC_TC_C8(c) : "r"(mosaic_tc_smem_addr(p)), "r"(ld));
#endif
}

__device__ __forceinline__ void mosaic_tc_store_c(float* p, const MosaicTcFragC& c, int ld) {
#ifdef MOSAIC_HOST_EMULATION
  mosaic_emul::wmma_store_c(p, c, ld);
#else
  asm volatile("wmma.store.d.sync.aligned.row.m16n16k16.shared.f32 "
               "[%0], {%1, %2, %3, %4, %5, %6, %7, %8}, %9;"
               :: "r"(mosaic_tc_smem_addr(p)), MOSAIC_TC_IN8(c, "f"), "r"(ld) : "memory");
#endif
}

// fp16: A and B fragments are 8 registers of f16x2 each.
struct MosaicTcF16 {
  typedef mosaic_tc_u16 T;
#ifdef MOSAIC_HOST_EMULATION
  typedef mosaic_emul::Tile FragA;
  typedef mosaic_emul::Tile FragB;
  static float to_float(T h) { return mosaic_host_half_to_float(h); }
  static T from_float(float f) { return mosaic_host_float_to_half(f); }
#else
  struct FragA { unsigned x[8]; };
  typedef FragA FragB;
  static __device__ __forceinline__ T from_float(float f) {
    T h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
  }
#endif
  // A = 16x16 row-major at p (the Q or P tile), row stride ld.
  static __device__ __forceinline__ void load_a(FragA& a, const T* p, int ld) {
#ifdef MOSAIC_HOST_EMULATION
    mosaic_emul::wmma_load_ab(a, p, ld, false, to_float);
#else
    asm volatile("wmma.load.a.sync.aligned.row.m16n16k16.shared.f16 "
                 "{%0, %1, %2, %3, %4, %5, %6, %7}, [%8], %9;"
                 : "=r"(a.x[0]), "=r"(a.x[1]), "=r"(a.x[2]), "=r"(a.x[3]), "=r"(a.x[4]),
                   "=r"(a.x[5]), "=r"(a.x[6]), "=r"(a.x[7])
                 : "r"(mosaic_tc_smem_addr(p)), "r"(ld));
#endif
  }
  // B(k, n) = p[n*ld + k]: K^T straight from the K tile stored [key][dim].
  static __device__ __forceinline__ void load_b_col(FragB& b, const T* p, int ld) {
#ifdef MOSAIC_HOST_EMULATION
    mosaic_emul::wmma_load_ab(b, p, ld, true, to_float);
#else
    asm volatile("wmma.load.b.sync.aligned.col.m16n16k16.shared.f16 "
                 "{%0, %1, %2, %3, %4, %5, %6, %7}, [%8], %9;"
                 : "=r"(b.x[0]), "=r"(b.x[1]), "=r"(b.x[2]), "=r"(b.x[3]), "=r"(b.x[4]),
                   "=r"(b.x[5]), "=r"(b.x[6]), "=r"(b.x[7])
                 : "r"(mosaic_tc_smem_addr(p)), "r"(ld));
#endif
  }
  // B(k, n) = p[k*ld + n]: the V tile stored [key][dim].
  static __device__ __forceinline__ void load_b_row(FragB& b, const T* p, int ld) {
#ifdef MOSAIC_HOST_EMULATION
    mosaic_emul::wmma_load_ab(b, p, ld, false, to_float);
#else
    asm volatile("wmma.load.b.sync.aligned.row.m16n16k16.shared.f16 "
                 "{%0, %1, %2, %3, %4, %5, %6, %7}, [%8], %9;"
                 : "=r"(b.x[0]), "=r"(b.x[1]), "=r"(b.x[2]), "=r"(b.x[3]), "=r"(b.x[4]),
                   "=r"(b.x[5]), "=r"(b.x[6]), "=r"(b.x[7])
                 : "r"(mosaic_tc_smem_addr(p)), "r"(ld));
#endif
  }
  // c += a.b with b loaded col-major (COL_B) or row-major.
  template <bool COL_B>
  static __device__ __forceinline__ void mma(MosaicTcFragC& c, const FragA& a, const FragB& b) {
#ifdef MOSAIC_HOST_EMULATION
    mosaic_emul::wmma_mma(c, a, b);
#else
    if (COL_B) {
      asm volatile("wmma.mma.sync.aligned.row.col.m16n16k16.f32.f32 "
                   "{%0, %1, %2, %3, %4, %5, %6, %7}, {%8, %9, %10, %11, %12, %13, %14, %15}, "
                   "{%16, %17, %18, %19, %20, %21, %22, %23}, "
                   "{%0, %1, %2, %3, %4, %5, %6, %7};"
                   : "+f"(c.x[0]), "+f"(c.x[1]), "+f"(c.x[2]), "+f"(c.x[3]), "+f"(c.x[4]),
                     "+f"(c.x[5]), "+f"(c.x[6]), "+f"(c.x[7])
                   : MOSAIC_TC_IN8(a, "r"), MOSAIC_TC_IN8(b, "r"));
    } else {
      asm volatile("wmma.mma.sync.aligned.row.row.m16n16k16.f32.f32 "
                   "{%0, %1, %2, %3, %4, %5, %6, %7}, {%8, %9, %10, %11, %12, %13, %14, %15}, "
                   "{%16, %17, %18, %19, %20, %21, %22, %23}, "
                   "{%0, %1, %2, %3, %4, %5, %6, %7};"
                   : "+f"(c.x[0]), "+f"(c.x[1]), "+f"(c.x[2]), "+f"(c.x[3]), "+f"(c.x[4]),
                     "+f"(c.x[5]), "+f"(c.x[6]), "+f"(c.x[7])
                   : MOSAIC_TC_IN8(a, "r"), MOSAIC_TC_IN8(b, "r"));
    }
#endif
  }
};

// bf16 (sm_80+): A and B fragments are 4 registers of two bf16 each.
struct MosaicTcBF16 {
  typedef mosaic_tc_u16 T;
#ifdef MOSAIC_HOST_EMULATION
  typedef mosaic_emul::Tile FragA;
  typedef mosaic_emul::Tile FragB;
  static float to_float(T h) { return __uint_as_float(((unsigned)h) << 16); }
  static T from_float(float f) { return mosaic_host_float_to_bf16(f); }
#else
  struct FragA { unsigned x[4]; };
  typedef FragA FragB;
  static __device__ __forceinline__ T from_float(float f) {
    T h;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
  }
#endif
  static __device__ __forceinline__ void load_a(FragA& a, const T* p, int ld) {
#ifdef MOSAIC_HOST_EMULATION
    mosaic_emul::wmma_load_ab(a, p, ld, false, to_float);
#else
    asm volatile("wmma.load.a.sync.aligned.row.m16n16k16.shared.bf16 {%0, %1, %2, %3}, [%4], %5;"
                 : "=r"(a.x[0]), "=r"(a.x[1]), "=r"(a.x[2]), "=r"(a.x[3])
                 : "r"(mosaic_tc_smem_addr(p)), "r"(ld));
#endif
  }
  static __device__ __forceinline__ void load_b_col(FragB& b, const T* p, int ld) {
#ifdef MOSAIC_HOST_EMULATION
    mosaic_emul::wmma_load_ab(b, p, ld, true, to_float);
#else
    asm volatile("wmma.load.b.sync.aligned.col.m16n16k16.shared.bf16 {%0, %1, %2, %3}, [%4], %5;"
                 : "=r"(b.x[0]), "=r"(b.x[1]), "=r"(b.x[2]), "=r"(b.x[3])
                 : "r"(mosaic_tc_smem_addr(p)), "r"(ld));
#endif
  }
  static __device__ __forceinline__ void load_b_row(FragB& b, const T* p, int ld) {
#ifdef MOSAIC_HOST_EMULATION
    mosaic_emul::wmma_load_ab(b, p, ld, false, to_float);
#else
    asm volatile("wmma.load.b.sync.aligned.row.m16n16k16.shared.bf16 {%0, %1, %2, %3}, [%4], %5;"
                 : "=r"(b.x[0]), "=r"(b.x[1]), "=r"(b.x[2]), "=r"(b.x[3])
                 : "r"(mosaic_tc_smem_addr(p)), "r"(ld));
#endif
  }
  template <bool COL_B>
  static __device__ __forceinline__ void mma(MosaicTcFragC& c, const FragA& a, const FragB& b) {
#ifdef MOSAIC_HOST_EMULATION
    mosaic_emul::wmma_mma(c, a, b);
#else
    if (COL_B) {
      asm volatile("wmma.mma.sync.aligned.row.col.m16n16k16.f32.bf16.bf16.f32 "
                   "{%0, %1, %2, %3, %4, %5, %6, %7}, {%8, %9, %10, %11}, {%12, %13, %14, %15}, "
                   "{%0, %1, %2, %3, %4, %5, %6, %7};"
                   : "+f"(c.x[0]), "+f"(c.x[1]), "+f"(c.x[2]), "+f"(c.x[3]), "+f"(c.x[4]),
                     "+f"(c.x[5]), "+f"(c.x[6]), "+f"(c.x[7])
                   : MOSAIC_TC_IN4(a, "r"), MOSAIC_TC_IN4(b, "r"));
    } else {
      asm volatile("wmma.mma.sync.aligned.row.row.m16n16k16.f32.bf16.bf16.f32 "
                   "{%0, %1, %2, %3, %4, %5, %6, %7}, {%8, %9, %10, %11}, {%12, %13, %14, %15}, "
                   "{%0, %1, %2, %3, %4, %5, %6, %7};"
                   : "+f"(c.x[0]), "+f"(c.x[1]), "+f"(c.x[2]), "+f"(c.x[3]), "+f"(c.x[4]),
                     "+f"(c.x[5]), "+f"(c.x[6]), "+f"(c.x[7])
                   : MOSAIC_TC_IN4(a, "r"), MOSAIC_TC_IN4(b, "r"));
    }
#endif
  }
};

// 16 bytes global -> shared, of which the first srcBytes (0 or 16) are read and the rest zeroed.
// Both addresses 16-byte aligned. Asynchronous on sm_80+ until mosaic_tc_async_wait().
__device__ __forceinline__ void mosaic_tc_copy16(void* dst, const void* src, int srcBytes) {
#if defined(MOSAIC_HOST_EMULATION)
  mosaic_emul::cp_async16(dst, src, srcBytes);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;"
               :: "r"(mosaic_tc_smem_addr(dst)), "l"(src), "r"(srcBytes) : "memory");
#else
  const unsigned* s = (const unsigned*)src;
  unsigned* d = (unsigned*)dst;
  for (int i = 0; i < 4; i++) {
    d[i] = srcBytes > 0 ? s[i] : 0u;
  }
#endif
}

// Waits for this thread's outstanding copies (other threads' need a barrier after).
__device__ __forceinline__ void mosaic_tc_async_wait() {
#if defined(MOSAIC_HOST_EMULATION)
  mosaic_emul::cp_async_wait_all();
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_all;" ::: "memory");
#endif
}

// ---- The kernel. --------------------------------------------------------------------------------

// Copies `rows` rows (the rest of the tile's 64 become 0) of one head, columns [0, dPad) of
// which [0, d) come from src, into a 16-bit tile of row stride LD. `vec`: 16-byte cp.async chunks
// (d, the row stride and the base are multiples of 8 elements), else element by element.
template <int LD>
__device__ __forceinline__ void mosaic_tc_load_tile(mosaic_tc_u16* dst, const mosaic_tc_u16* src,
                                                    int rowStride, int rows, int d, int dPad,
                                                    bool vec) {
  if (vec) {
    const int chunks = dPad >> 3;
    for (int i = threadIdx.x; i < MOSAIC_TC_KEY_TILE * chunks; i += MOSAIC_TC_THREADS) {
      const int r = i / chunks;
      const int c = (i - r * chunks) << 3;
      const bool in = r < rows && c < d;
      mosaic_tc_copy16(dst + r * LD + c, in ? src + (long long)r * rowStride + c : src,
                       in ? 16 : 0);
    }
  } else {
    for (int i = threadIdx.x; i < MOSAIC_TC_KEY_TILE * dPad; i += MOSAIC_TC_THREADS) {
      const int r = i / dPad;
      const int c = i - r * dPad;
      dst[r * LD + c] = r < rows && c < d ? src[(long long)r * rowStride + c] : (mosaic_tc_u16)0;
    }
  }
}

// One 16x16 fp32 tile of this warp: c = (accumulate ? c : 0) + sum over kSteps of A(16x16).B(16x16).
// A row-major at a (stride lda), stepping 16 columns; B col-major (COL_B: K^T from a [key][dim]
// tile, stepping 16 elements) or row-major (the [key][dim] V tile, stepping 16 rows). The tile is
// staged in shared memory at c (stride ldc): loaded first when accumulating, stored at the end.
template <typename L, bool COL_B>
__device__ __forceinline__ void mosaic_tc_warp_gemm(float* c, int ldc, bool accumulate,
                                                    const mosaic_tc_u16* a, int lda,
                                                    const mosaic_tc_u16* b, int ldb, int kSteps) {
  MosaicTcFragC acc;
  if (accumulate) {
    mosaic_tc_load_c(acc, c, ldc);
  } else {
    mosaic_tc_zero(acc);
  }
  for (int kk = 0; kk < kSteps; kk++) {
    typename L::FragA fa;
    typename L::FragB fb;
    L::load_a(fa, a + kk * 16, lda);
    if (COL_B) {
      L::load_b_col(fb, b + kk * 16, ldb);
    } else {
      L::load_b_row(fb, b + kk * 16 * ldb, ldb);
    }
    L::template mma<COL_B>(acc, fa, fb);
  }
  mosaic_tc_store_c(c, acc, ldc);
}

// Whether the score of query position queryPos against key j of the tile at j0 is masked.
__device__ __forceinline__ bool mosaic_tc_masked(int j, int valid, long long keyOffset, int j0,
                                                 long long keyLimit, int causal,
                                                 long long queryPos) {
  const long long keyPos = keyOffset + j0 + j;
  return j >= valid || keyPos >= keyLimit || (causal && keyPos > queryPos);
}

// The kernel body for batch entry b (the plain kernel: blockIdx.z; varlen: its own bases, b 0).
template <typename L, int DMAX>
__device__ __forceinline__ void mosaic_flash_tc(
    const mosaic_tc_u16* __restrict__ q, long long qBatchStride, int qRowStride,
    const mosaic_tc_u16* __restrict__ k, long long kBatchStride, int kRowStride,
    const mosaic_tc_u16* __restrict__ v, long long vBatchStride, int vRowStride,
    void* __restrict__ out, long long oBatchStride, int oRowStride, float* __restrict__ lse,
    int seqQ, int seqK, int heads, int kvHeads, int d, float qScale,
    int causal, long long queryOffset, long long keyOffset, long long keyLimit, int outHalf,
    int b) {
  constexpr int LD = DMAX + 8;    // 16-bit Q/K/V rows: +16 bytes against bank conflicts
  constexpr int O_LD = DMAX + 4;  // fp32 O rows
  // WMMA wants 32-byte aligned tiles: every region and fragment offset below is a multiple of
  // 32 bytes from the dynamic shared memory base (these kernels have no static shared memory).
  extern __shared__ float smem[];
  mosaic_tc_u16* qs = (mosaic_tc_u16*)smem;
  mosaic_tc_u16* ks = qs + MOSAIC_TC_QUERY_TILE * LD;
  mosaic_tc_u16* vs = ks + MOSAIC_TC_KEY_TILE * LD;
  float* ss = (float*)(vs + MOSAIC_TC_KEY_TILE * LD);
  mosaic_tc_u16* ps = (mosaic_tc_u16*)(ss + MOSAIC_TC_QUERY_TILE * MOSAIC_TC_S_LD);
  float* os = (float*)(ps + MOSAIC_TC_QUERY_TILE * MOSAIC_TC_P_LD);

  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int row = warp * 16 + (lane >> 1);  // the query row this lane pair owns in the softmax
  const int half = lane & 1;                // keys / columns half, half+2, ...
  const int h = blockIdx.y;
  const int kvh = h / (heads / kvHeads);  // grouped-query attention, as in flash_forward.cu
  const int q0 = blockIdx.x * MOSAIC_TC_QUERY_TILE;
  const int rows = mosaic_tc_min(MOSAIC_TC_QUERY_TILE, seqQ - q0);
  const int dPad = (d + 15) & ~15;
  const int kSteps = dPad >> 4;
  const float negInf = mosaic_tc_neg_inf();
  // 16-byte cp.async chunks need every row start 16-byte aligned: bases, strides and d.
  const bool vec = (d & 7) == 0 && (qRowStride & 7) == 0 && (kRowStride & 7) == 0
      && (vRowStride & 7) == 0 && (qBatchStride & 7) == 0 && (kBatchStride & 7) == 0
      && (vBatchStride & 7) == 0
      && ((((unsigned long long)q | (unsigned long long)k | (unsigned long long)v) & 15) == 0);

  // Keys [0, keyEnd) may be visible to some query of the tile (AttentionMask.visibleKeyEnd).
  long long end = seqK;
  end = mosaic_tc_min64(end, keyLimit - keyOffset);
  if (causal) {
    end = mosaic_tc_min64(end, queryOffset + q0 + rows - keyOffset);
  }
  const int keyEnd = end < 0 ? 0 : (int)end;
  const long long queryPos = queryOffset + q0 + row;

  const mosaic_tc_u16* kHead = k + b * kBatchStride + (long long)kvh * d;
  const mosaic_tc_u16* vHead = v + b * vBatchStride + (long long)kvh * d;
  // Rows [j0, j0 + 64) of K or V (those past keyEnd become 0) into a shared tile, cp.async.
  auto stageKeys = [&](mosaic_tc_u16* dst, const mosaic_tc_u16* head, int rowStride, int j0) {
    mosaic_tc_load_tile<LD>(dst, head + (long long)j0 * rowStride, rowStride,
                            mosaic_tc_min(MOSAIC_TC_KEY_TILE, keyEnd - j0), d, dPad, vec);
  };
  mosaic_tc_load_tile<LD>(qs, q + b * qBatchStride + (long long)q0 * qRowStride + (long long)h * d,
                          qRowStride, rows, d, dPad, vec);
  if (keyEnd > 0) {
    stageKeys(ks, kHead, kRowStride, 0);
  }
  float* orow = os + row * O_LD;
  for (int c = half; c < dPad; c += 2) {
    orow[c] = 0.0f;
  }

  float m = negInf;  // running max of this row's scores (base 2), same in both lanes of the pair
  float l = 0.0f;    // running sum of 2^(s - m)
  for (int j0 = 0; j0 < keyEnd; j0 += MOSAIC_TC_KEY_TILE) {
    const int valid = mosaic_tc_min(MOSAIC_TC_KEY_TILE, keyEnd - j0);
    mosaic_tc_async_wait();
    __syncthreads();  // K(j) (and Q) landed; every warp is done with V(j-1)
    stageKeys(vs, vHead, vRowStride, j0);

    // S = Q.K^T for this warp's 16 rows, 16 keys at a time (the softmax masks keys >= valid
    // without reading S, so tiles wholly past `valid` are skipped).
    for (int n = 0; n * 16 < valid; n++) {
      mosaic_tc_warp_gemm<L, true>(ss + warp * 16 * MOSAIC_TC_S_LD + n * 16, MOSAIC_TC_S_LD,
                                   false, qs + warp * 16 * LD, LD, ks + n * 16 * LD, LD, kSteps);
    }
    __syncwarp();

    // Online softmax of row `row`, keys half, half+2, ... of the tile.
    const float* srow = ss + row * MOSAIC_TC_S_LD;
    mosaic_tc_u16* prow = ps + row * MOSAIC_TC_P_LD;
    float tileMax = negInf;
    for (int j = half; j < MOSAIC_TC_KEY_TILE; j += 2) {
      if (!mosaic_tc_masked(j, valid, keyOffset, j0, keyLimit, causal, queryPos)) {
        tileMax = fmaxf(tileMax, srow[j] * qScale);
      }
    }
    tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, 1));
    const float mNew = fmaxf(m, tileMax);
    // A row that has seen no key yet keeps max -inf: shift by 0 so 2^(-inf) stays 0.
    const float shift = mNew == negInf ? 0.0f : mNew;
    const float alpha = m == mNew ? 1.0f : (m == negInf ? 0.0f : exp2f(m - mNew));
    float tileSum = 0.0f;
    for (int j = half; j < MOSAIC_TC_KEY_TILE; j += 2) {
      const float p = mosaic_tc_masked(j, valid, keyOffset, j0, keyLimit, causal, queryPos)
          ? 0.0f : exp2f(srow[j] * qScale - shift);
      prow[j] = L::from_float(p);
      tileSum += p;  // l sums the fp32 probabilities, as FlashAttention does
    }
    tileSum += __shfl_xor_sync(0xffffffffu, tileSum, 1);
    l = l * alpha + tileSum;
    m = mNew;
    if (alpha != 1.0f) {
      for (int c = half; c < dPad; c += 2) {
        orow[c] *= alpha;
      }
    }

    mosaic_tc_async_wait();
    __syncthreads();  // V(j) landed; every warp is done with K(j)
    if (j0 + MOSAIC_TC_KEY_TILE < keyEnd) {
      stageKeys(ks, kHead, kRowStride, j0 + MOSAIC_TC_KEY_TILE);
    }

    // O += P.V for this warp's 16 rows, 16 head dims at a time (keys past `valid` are 0 in P).
    const int keySteps = (valid + 15) >> 4;
    for (int n = 0; n < kSteps; n++) {
      mosaic_tc_warp_gemm<L, false>(os + warp * 16 * O_LD + n * 16, O_LD, true,
                                    ps + warp * 16 * MOSAIC_TC_P_LD, MOSAIC_TC_P_LD,
                                    vs + n * 16, LD, keySteps);
    }
    __syncwarp();  // this warp's O rows are visible to the lanes that rescale and write them
  }
  mosaic_tc_async_wait();  // nothing may be in flight at exit (keyEnd 0: the Q tile)

  const int qi = q0 + row;
  if (row < rows) {
    const float inv = l == 0.0f ? 0.0f : 1.0f / l;
    const long long base = b * oBatchStride + (long long)qi * oRowStride + (long long)h * d;
    if (outHalf) {
      mosaic_tc_u16* o16 = (mosaic_tc_u16*)out + base;
      for (int c = half; c < d; c += 2) {
        o16[c] = L::from_float(orow[c] * inv);
      }
    } else {
      float* o32 = (float*)out + base;
      for (int c = half; c < d; c += 2) {
        o32[c] = orow[c] * inv;
      }
    }
    if (half == 0) {
      lse[((long long)b * seqQ + qi) * heads + h] =
          l == 0.0f ? negInf : (m + log2f(l)) * MOSAIC_TC_LN2;
    }
  }
}

// Varlen: sequences packed along seq, cu_seqlens style (dev.mosaic.kernels.VarlenSequences), as
// mosaic_flash_fwd_varlen_f32_* in flash_forward.cu. Grid (query tiles of the longest sequence,
// heads, batch * sequences); a block past its sequence's last tile returns before any barrier
// (the whole block alike). The rest is the kernel above on the sequence's own rows, its key
// padding validKeys[s] folded into the key bound; lse is [batch][query row][heads].
template <typename L, int DMAX>
__device__ __forceinline__ void mosaic_flash_tc_varlen(
    const mosaic_tc_u16* __restrict__ q, long long qBatchStride, int qRowStride,
    const mosaic_tc_u16* __restrict__ k, long long kBatchStride, int kRowStride,
    const mosaic_tc_u16* __restrict__ v, long long vBatchStride, int vRowStride,
    void* __restrict__ out, long long oBatchStride, int oRowStride, float* __restrict__ lse,
    const int* __restrict__ cuQ, const int* __restrict__ cuK, const int* __restrict__ validKeys,
    int hasValidKeys, int sequences, int totalQ, int heads, int kvHeads, int d, float qScale,
    int causal, long long queryOffset, long long keyOffset, long long keyLimit, int outHalf) {
  const int s = blockIdx.z % sequences;
  const int b = blockIdx.z / sequences;
  const int q0 = cuQ[s];
  const int seqQ = cuQ[s + 1] - q0;
  if ((int)blockIdx.x * MOSAIC_TC_QUERY_TILE >= seqQ) {
    return;
  }
  const int k0 = cuK[s];
  const long long limit =
      hasValidKeys ? mosaic_tc_min64(keyLimit, keyOffset + validKeys[s]) : keyLimit;
  const long long outOffset = b * oBatchStride + (long long)q0 * oRowStride;
  mosaic_flash_tc<L, DMAX>(
      q + b * qBatchStride + (long long)q0 * qRowStride, 0, qRowStride,
      k + b * kBatchStride + (long long)k0 * kRowStride, 0, kRowStride,
      v + b * vBatchStride + (long long)k0 * vRowStride, 0, vRowStride,
      outHalf ? (void*)((mosaic_tc_u16*)out + outOffset) : (void*)((float*)out + outOffset), 0,
      oRowStride, lse + ((long long)b * totalQ + q0) * heads, seqQ, cuK[s + 1] - k0, heads,
      kvHeads, d, qScale, causal, queryOffset, keyOffset, limit, outHalf, 0);
}

#define MOSAIC_FLASH_TC_KERNEL(NAME, TYPE, DMAX)                                                   \
  extern "C" __global__ void __launch_bounds__(MOSAIC_TC_THREADS) NAME(                            \
      const mosaic_tc_u16* __restrict__ q, long long qBatchStride, int qRowStride,                 \
      const mosaic_tc_u16* __restrict__ k, long long kBatchStride, int kRowStride,                 \
      const mosaic_tc_u16* __restrict__ v, long long vBatchStride, int vRowStride,                 \
      void* __restrict__ out, long long oBatchStride, int oRowStride, float* __restrict__ lse,     \
      int seqQ, int seqK, int heads, int kvHeads, int d, float qScale,                             \
      int causal, long long queryOffset, long long keyOffset, long long keyLimit, int outHalf) {   \
    mosaic_flash_tc<TYPE, DMAX>(q, qBatchStride, qRowStride, k, kBatchStride, kRowStride, v,      \
                                vBatchStride, vRowStride, out, oBatchStride, oRowStride, lse,     \
                                seqQ, seqK, heads, kvHeads, d, qScale, causal, queryOffset,       \
                                keyOffset, keyLimit, outHalf, (int)blockIdx.z);                   \
  }

MOSAIC_FLASH_TC_KERNEL(mosaic_flash_tc_f16_d32, MosaicTcF16, 32)
MOSAIC_FLASH_TC_KERNEL(mosaic_flash_tc_f16_d64, MosaicTcF16, 64)
MOSAIC_FLASH_TC_KERNEL(mosaic_flash_tc_f16_d128, MosaicTcF16, 128)
MOSAIC_FLASH_TC_KERNEL(mosaic_flash_tc_f16_d256, MosaicTcF16, 256)
MOSAIC_FLASH_TC_KERNEL(mosaic_flash_tc_bf16_d32, MosaicTcBF16, 32)
MOSAIC_FLASH_TC_KERNEL(mosaic_flash_tc_bf16_d64, MosaicTcBF16, 64)
MOSAIC_FLASH_TC_KERNEL(mosaic_flash_tc_bf16_d128, MosaicTcBF16, 128)
MOSAIC_FLASH_TC_KERNEL(mosaic_flash_tc_bf16_d256, MosaicTcBF16, 256)

#define MOSAIC_FLASH_TC_VARLEN_KERNEL(NAME, TYPE, DMAX)                                            \
  extern "C" __global__ void __launch_bounds__(MOSAIC_TC_THREADS) NAME(                            \
      const mosaic_tc_u16* __restrict__ q, long long qBatchStride, int qRowStride,                 \
      const mosaic_tc_u16* __restrict__ k, long long kBatchStride, int kRowStride,                 \
      const mosaic_tc_u16* __restrict__ v, long long vBatchStride, int vRowStride,                 \
      void* __restrict__ out, long long oBatchStride, int oRowStride, float* __restrict__ lse,     \
      const int* __restrict__ cuQ, const int* __restrict__ cuK,                                    \
      const int* __restrict__ validKeys, int hasValidKeys, int sequences, int totalQ, int heads,   \
      int kvHeads, int d, float qScale, int causal, long long queryOffset, long long keyOffset,    \
      long long keyLimit, int outHalf) {                                                           \
    mosaic_flash_tc_varlen<TYPE, DMAX>(q, qBatchStride, qRowStride, k, kBatchStride, kRowStride,  \
                                       v, vBatchStride, vRowStride, out, oBatchStride, oRowStride, \
                                       lse, cuQ, cuK, validKeys, hasValidKeys, sequences, totalQ,  \
                                       heads, kvHeads, d, qScale, causal, queryOffset, keyOffset,  \
                                       keyLimit, outHalf);                                         \
  }

MOSAIC_FLASH_TC_VARLEN_KERNEL(mosaic_flash_tc_varlen_f16_d32, MosaicTcF16, 32)
MOSAIC_FLASH_TC_VARLEN_KERNEL(mosaic_flash_tc_varlen_f16_d64, MosaicTcF16, 64)
MOSAIC_FLASH_TC_VARLEN_KERNEL(mosaic_flash_tc_varlen_f16_d128, MosaicTcF16, 128)
MOSAIC_FLASH_TC_VARLEN_KERNEL(mosaic_flash_tc_varlen_f16_d256, MosaicTcF16, 256)
MOSAIC_FLASH_TC_VARLEN_KERNEL(mosaic_flash_tc_varlen_bf16_d32, MosaicTcBF16, 32)
MOSAIC_FLASH_TC_VARLEN_KERNEL(mosaic_flash_tc_varlen_bf16_d64, MosaicTcBF16, 64)
MOSAIC_FLASH_TC_VARLEN_KERNEL(mosaic_flash_tc_varlen_bf16_d128, MosaicTcBF16, 128)
MOSAIC_FLASH_TC_VARLEN_KERNEL(mosaic_flash_tc_varlen_bf16_d256, MosaicTcBF16, 256)
