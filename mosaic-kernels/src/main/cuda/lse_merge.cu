// Mosaic LSE merge: folds a partial attention result (o_b, lse_b), computed over another set of
// keys, into an accumulator (o, lse) in place, exactly as dev.mosaic.kernels.LseMerge does:
//   lse' = max + log1p(exp(-|lse - lse_b|))        (= lse - log sigmoid(lse - lse_b))
//   o'   = o - sigmoid(lse_b - lse) * (o - o_b)
// fp32 throughout (DESIGN section 4). A partial with lse_b = -inf (its queries saw no key) leaves
// the accumulator unchanged; an accumulator at -inf takes the partial as it is; never NaN.
//
// Layout: `rows` rows of `d` floats, contiguous (row = (batch, query, head) in the order of the
// [batch][seq][heads] LSE layout, so lse[row] belongs to o[row*d .. row*d+d)). One warp per row:
// every lane reads both LSEs before lane 0 overwrites lse[row].
//
// Self-contained (no #include): compiles with nvcc at build time and NVRTC at run time.

#define MOSAIC_MERGE_WARPS 8

__device__ __forceinline__ float mosaic_merge_neg_inf() { return __int_as_float(0xff800000); }

// sigmoid(x) = 1 / (1 + e^-x), finite for any |x|.
__device__ __forceinline__ float mosaic_sigmoid(float x) {
  if (x >= 0.0f) {
    return 1.0f / (1.0f + expf(-x));
  }
  const float e = expf(x);
  return e / (1.0f + e);
}

extern "C" __global__ void __launch_bounds__(32 * MOSAIC_MERGE_WARPS)
mosaic_lse_merge(float* __restrict__ acc, float* __restrict__ accLse,
                 const float* __restrict__ part, const float* __restrict__ partLse,
                 long long rows, int d) {
  const long long row = (long long)blockIdx.x * MOSAIC_MERGE_WARPS + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= rows) {
    return;
  }
  const float negInf = mosaic_merge_neg_inf();
  const float a = accLse[row];
  const float bl = partLse[row];
  float w;  // weight of the incoming partial
  if (bl == negInf) {
    w = 0.0f;
  } else if (a == negInf) {
    w = 1.0f;
  } else {
    w = mosaic_sigmoid(bl - a);
  }
  if (w != 0.0f) {
    float* o = acc + row * d;
    const float* ob = part + row * d;
    for (int c = lane; c < d; c += 32) {
      const float x = o[c];
      o[c] = x - w * (x - ob[c]);
    }
  }
  __syncwarp();
  if (lane == 0) {
    float merged;
    if (a == negInf) {
      merged = bl;
    } else if (bl == negInf) {
      merged = a;
    } else {
      merged = fmaxf(a, bl) + log1pf(expf(-fabsf(a - bl)));
    }
    accLse[row] = merged;
  }
}
