// Host-emulation driver for the Mosaic kernels (see host_emulation.h). Reads one launch from a
// file, runs it, writes every buffer back:
//   in:  "MOSA", i32 nameLen, name, i32 gridX gridY gridZ blockX sharedBytes,
//        i32 nArgs, nArgs x (i32 type [0 ptr = buffer index, 1 i64, 2 i32, 3 f32], i64 bits),
//        i32 nBuffers, nBuffers x (i64 bytes, bytes)            (little-endian)
//   out: the buffers' bytes, in order
// Exit codes: 0 ok, 2 bad input, 3 the kernel wrote past its dynamic shared memory.
#include "host_emulation.h"

#include "../flash_forward.cu"
#include "../lse_merge.cu"
#include "../flash_forward_tc.cu"
#include "../convert.cu"

#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>

// The kernels' `extern __shared__ float smem[]`: one block runs at a time, so one array serves.
constexpr int kSharedFloats = 232448 / 4;  // the largest opt-in shared memory of any GPU
alignas(128) float smem[kSharedFloats + 1024];  // + a canary zone; WMMA wants 32-byte alignment

namespace {
struct Args {
  std::vector<int64_t> bits;
  std::vector<std::vector<char>>* buffers;
  void* p(int i) const { return (*buffers).at((size_t)bits.at(i)).data(); }
  long long l(int i) const { return (long long)bits.at(i); }
  int i(int i) const { return (int)bits.at(i); }
  float f(int i) const {
    int32_t b = (int32_t)bits.at(i);
    float x;
    std::memcpy(&x, &b, 4);
    return x;
  }
};

// Argument indices follow the kernels' signatures: ..., heads (15), kvHeads (16), d (17), ...
#define FLASH(NAME, T)                                                                       \
  {#NAME, [](const Args& a) {                                                                \
     NAME((const T*)a.p(0), a.l(1), a.i(2), (const T*)a.p(3), a.l(4), a.i(5),                \
          (const T*)a.p(6), a.l(7), a.i(8), (float*)a.p(9), a.l(10), a.i(11), (float*)a.p(12), \
          a.i(13), a.i(14), a.i(15), a.i(16), a.i(17), a.f(18), a.i(19), a.l(20), a.l(21),   \
          a.l(22));                                                                          \
   }}

#define FLASH_VARLEN(NAME)                                                                     \
  {#NAME, [](const Args& a) {                                                                  \
     NAME((const float*)a.p(0), a.l(1), a.i(2), (const float*)a.p(3), a.l(4), a.i(5),          \
          (const float*)a.p(6), a.l(7), a.i(8), (float*)a.p(9), a.l(10), a.i(11),              \
          (float*)a.p(12), (const int*)a.p(13), (const int*)a.p(14), (const int*)a.p(15),      \
          a.i(16), a.i(17), a.i(18), a.i(19), a.i(20), a.i(21), a.f(22), a.i(23), a.l(24),     \
          a.l(25), a.l(26));                                                                   \
   }}

// flash_forward_tc.cu: the same arguments, out untyped (fp32 or 16-bit), then outHalf.
#define FLASH_TC(NAME)                                                                        \
  {#NAME, [](const Args& a) {                                                                 \
     NAME((const mosaic_tc_u16*)a.p(0), a.l(1), a.i(2), (const mosaic_tc_u16*)a.p(3), a.l(4), \
          a.i(5), (const mosaic_tc_u16*)a.p(6), a.l(7), a.i(8), a.p(9), a.l(10), a.i(11),     \
          (float*)a.p(12), a.i(13), a.i(14), a.i(15), a.i(16), a.i(17), a.f(18), a.i(19),     \
          a.l(20), a.l(21), a.l(22), a.i(23));                                                \
   }}

// The varlen tensor-core kernel: flash_forward.cu's varlen arguments, out untyped, then outHalf.
#define FLASH_TC_VARLEN(NAME)                                                                  \
  {#NAME, [](const Args& a) {                                                                  \
     NAME((const mosaic_tc_u16*)a.p(0), a.l(1), a.i(2), (const mosaic_tc_u16*)a.p(3), a.l(4),  \
          a.i(5), (const mosaic_tc_u16*)a.p(6), a.l(7), a.i(8), a.p(9), a.l(10), a.i(11),      \
          (float*)a.p(12), (const int*)a.p(13), (const int*)a.p(14), (const int*)a.p(15),      \
          a.i(16), a.i(17), a.i(18), a.i(19), a.i(20), a.i(21), a.f(22), a.i(23), a.l(24),     \
          a.l(25), a.l(26), a.i(27));                                                          \
   }}

const std::map<std::string, std::function<void(const Args&)>> kKernels = {
    FLASH_VARLEN(mosaic_flash_fwd_varlen_f32_d32), FLASH_VARLEN(mosaic_flash_fwd_varlen_f32_d64),
    FLASH_VARLEN(mosaic_flash_fwd_varlen_f32_d128),
    FLASH_VARLEN(mosaic_flash_fwd_varlen_f32_d256),
    FLASH(mosaic_flash_fwd_f32_d32, float), FLASH(mosaic_flash_fwd_f32_d64, float),
    FLASH(mosaic_flash_fwd_f32_d128, float), FLASH(mosaic_flash_fwd_f32_d256, float),
    FLASH(mosaic_flash_fwd_f16_d32, mosaic_u16), FLASH(mosaic_flash_fwd_f16_d64, mosaic_u16),
    FLASH(mosaic_flash_fwd_f16_d128, mosaic_u16), FLASH(mosaic_flash_fwd_f16_d256, mosaic_u16),
    FLASH(mosaic_flash_fwd_bf16_d32, mosaic_u16), FLASH(mosaic_flash_fwd_bf16_d64, mosaic_u16),
    FLASH(mosaic_flash_fwd_bf16_d128, mosaic_u16), FLASH(mosaic_flash_fwd_bf16_d256, mosaic_u16),
    FLASH_TC(mosaic_flash_tc_f16_d32), FLASH_TC(mosaic_flash_tc_f16_d64),
    FLASH_TC(mosaic_flash_tc_f16_d128), FLASH_TC(mosaic_flash_tc_f16_d256),
    FLASH_TC(mosaic_flash_tc_bf16_d32), FLASH_TC(mosaic_flash_tc_bf16_d64),
    FLASH_TC(mosaic_flash_tc_bf16_d128), FLASH_TC(mosaic_flash_tc_bf16_d256),
    FLASH_TC_VARLEN(mosaic_flash_tc_varlen_f16_d32), FLASH_TC_VARLEN(mosaic_flash_tc_varlen_f16_d64),
    FLASH_TC_VARLEN(mosaic_flash_tc_varlen_f16_d128),
    FLASH_TC_VARLEN(mosaic_flash_tc_varlen_f16_d256),
    FLASH_TC_VARLEN(mosaic_flash_tc_varlen_bf16_d32),
    FLASH_TC_VARLEN(mosaic_flash_tc_varlen_bf16_d64),
    FLASH_TC_VARLEN(mosaic_flash_tc_varlen_bf16_d128),
    FLASH_TC_VARLEN(mosaic_flash_tc_varlen_bf16_d256),
    {"mosaic_convert_f32_to_f16",
     [](const Args& a) {
       mosaic_convert_f32_to_f16((const float*)a.p(0), (mosaic_cvt_u16*)a.p(1), a.l(2));
     }},
    {"mosaic_convert_f32_to_bf16",
     [](const Args& a) {
       mosaic_convert_f32_to_bf16((const float*)a.p(0), (mosaic_cvt_u16*)a.p(1), a.l(2));
     }},
    {"mosaic_lse_merge",
     [](const Args& a) {
       mosaic_lse_merge((float*)a.p(0), (float*)a.p(1), (const float*)a.p(2),
                        (const float*)a.p(3), a.l(4), a.i(5));
     }},
};

template <typename T>
bool get(std::ifstream& in, T& v) {
  return (bool)in.read(reinterpret_cast<char*>(&v), sizeof v);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <launch file> <output file>\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  char magic[4];
  int32_t nameLen = 0;
  if (!in.read(magic, 4) || std::memcmp(magic, "MOSA", 4) != 0 || !get(in, nameLen)) {
    std::fprintf(stderr, "bad launch file\n");
    return 2;
  }
  std::string name(nameLen, '\0');
  in.read(name.data(), nameLen);
  int32_t grid[3], threads, shared, nArgs;
  get(in, grid[0]);
  get(in, grid[1]);
  get(in, grid[2]);
  get(in, threads);
  get(in, shared);
  get(in, nArgs);
  Args args;
  for (int i = 0; i < nArgs; i++) {
    int32_t t;
    int64_t b;
    get(in, t);
    get(in, b);
    args.bits.push_back(b);
  }
  int32_t nBuffers;
  get(in, nBuffers);
  std::vector<std::vector<char>> buffers(nBuffers);
  for (auto& buf : buffers) {
    int64_t bytes;
    get(in, bytes);
    buf.resize((size_t)bytes);
    in.read(buf.data(), bytes);
  }
  if (!in) {
    std::fprintf(stderr, "truncated launch file\n");
    return 2;
  }
  args.buffers = &buffers;
  auto kernel = kKernels.find(name);
  if (kernel == kKernels.end()) {
    std::fprintf(stderr, "unknown kernel %s\n", name.c_str());
    return 2;
  }
  if (shared < 0 || shared / 4 > kSharedFloats || threads % 32 != 0) {
    std::fprintf(stderr, "bad launch: %d threads, %d shared bytes\n", threads, shared);
    return 2;
  }
  const float canary = __uint_as_float(0x7fc0dead);  // a NaN: reading past the end poisons results
  const int sharedFloats = shared / 4;

  gridDim = {(unsigned)grid[0], (unsigned)grid[1], (unsigned)grid[2]};
  mosaic_emul::Block block(threads);
  mosaic_emul::block = &block;
  for (unsigned z = 0; z < (unsigned)grid[2]; z++) {
    for (unsigned y = 0; y < (unsigned)grid[1]; y++) {
      for (unsigned x = 0; x < (unsigned)grid[0]; x++) {
        // Uninitialised shared memory reads as NaN; past the declared size is the canary.
        for (int i = 0; i < kSharedFloats + 1024; i++) {
          smem[i] = i < sharedFloats ? std::nanf("") : canary;
        }
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; t++) {
          pool.emplace_back([&, t] {
            threadIdx = {(unsigned)t, 0, 0};
            blockIdx = {x, y, z};
            kernel->second(args);
          });
        }
        for (auto& th : pool) {
          th.join();
        }
        for (int i = sharedFloats; i < kSharedFloats + 1024; i++) {
          uint32_t b;
          std::memcpy(&b, &smem[i], 4);
          if (b != 0x7fc0deadu) {
            std::fprintf(stderr, "%s wrote shared float %d, past its %d bytes\n", name.c_str(), i,
                         shared);
            return 3;
          }
        }
      }
    }
  }
  std::ofstream out(argv[2], std::ios::binary);
  for (auto& buf : buffers) {
    out.write(buf.data(), (std::streamsize)buf.size());
  }
  return out ? 0 : 2;
}
