// Standalone (TF-free) check of the GEMM core: every micro-kernel this CPU can run (portable,
// AVX2 int16, AVX2 byte where the weights allow it, AVX-512 VNNI) against a scalar reference on
// random shapes, plus a rough single-thread speed, the CPU's own ceilings (fp32 FMA on ymm and zmm,
// the AVX2 byte triple, vpdpbusd, vpdpwssd) and each path's fraction of its ceiling.
// `make gemm-check`; exits 1 on a mismatch. Paths the CPU lacks are skipped.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <immintrin.h>

#include "qg_gemm.h"

namespace {

// AMX: tdpbusd on four independent C tiles, A and B tiles loaded once (16 x 16 x 64 MACs each).
struct alignas(64) AmxConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
__attribute__((noinline, target("amx-tile,amx-int8"))) double AmxCeiling() {
  AmxConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  alignas(64) static uint8_t bytes[16 * 64] = {1, 2, 3};
  _tile_loadconfig(&cfg);
  _tile_loadd(4, bytes, 64);
  _tile_loadd(5, bytes, 64);
  _tile_loadd(6, bytes, 64);
  _tile_loadd(7, bytes, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const long iters = 1000000;
  const std::clock_t t0 = std::clock();
  for (long i = 0; i < iters; ++i) {
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(1, 4, 7);
    _tile_dpbusd(2, 5, 6);
    _tile_dpbusd(3, 5, 7);
  }
  const double secs = double(std::clock() - t0) / CLOCKS_PER_SEC;
  alignas(64) static int32_t out[16 * 16];
  _tile_stored(0, out, 64);
  _tile_release();
  return iters * 4.0 * 16 * 16 * 64 / secs / 1e9;
}

// Ceiling of each path's instructions (GMAC/s, one thread), filled before the timed cases.
struct Ceiling {
  const char* name;
  double gmacs;
};
std::vector<std::pair<std::string, Ceiling>> g_ceilings;  // path name -> its ceiling

const Ceiling* CeilingOf(const std::string& path) {
  for (const auto& entry : g_ceilings)
    if (entry.first == path) return &entry.second;
  return nullptr;
}

struct Case {
  int M, K, N;
  int wmax;  // weights in [-wmax, wmax]; 64 makes every pair fit the byte kernel; negative:
             // up to -wmax with alternating signs along K (fits the byte kernel too)
};

// Seconds of the fastest of 5 runs (1 run when not timing).
template <typename F>
double BestOf(bool timing, F run) {
  double best = 1e30;
  for (int i = 0; i < (timing ? 5 : 1); ++i) {
    std::clock_t c0 = std::clock();
    run();
    best = std::min(best, double(std::clock() - c0) / CLOCKS_PER_SEC);
  }
  return best;
}

bool Run(const Case& t, std::mt19937* rng, bool timing) {
  using namespace qg;
  std::vector<uint8_t> a(static_cast<size_t>(t.M) * t.K);
  std::vector<int8_t> b(static_cast<size_t>(t.K) * t.N);
  for (auto& v : a) v = static_cast<uint8_t>((*rng)() & 255);
  if (t.wmax > 0) {
    for (auto& v : b) v = static_cast<int8_t>(static_cast<int>((*rng)() % (2 * t.wmax + 1)) - t.wmax);
  } else {  // full-size codes of alternating sign along K: pairs of opposite signs
    for (size_t i = 0; i < b.size(); ++i) {
      const int mag = static_cast<int>((*rng)() % (-t.wmax + 1));
      b[i] = static_cast<int8_t>((i / t.N) % 2 ? -mag : mag);
    }
  }
  const int zp = static_cast<int>((*rng)() & 255);
  std::vector<int32_t> want(static_cast<size_t>(t.M) * t.N), got(want.size());
  for (int m = 0; m < t.M; ++m)
    for (int n = 0; n < t.N; ++n) {
      int64_t s = 0;
      for (int k = 0; k < t.K; ++k) s += (a[m * t.K + k] - zp) * int64_t(b[k * t.N + n]);
      want[m * t.N + n] = static_cast<int32_t>(s);
    }
  PackedB pb;
  PackB(b.data(), t.K, t.N, t.N, &pb);
  TileSink sink = [&](int64_t r0, int rows, int n0, int n1, const int32_t* c, int ldc) {
    for (int i = 0; i < rows; ++i)
      std::memcpy(&got[(r0 + i) * t.N + n0], c + i * ldc, sizeof(int32_t) * (n1 - n0));
  };
  bool ok = true;
  auto report = [&](const char* name, double secs) {
    const bool same = got == want;
    ok = ok && same;
    std::printf("  %-15s M=%-6d K=%-5d N=%-5d %s", name, t.M, t.K, t.N, same ? "exact" : "MISMATCH");
    if (timing) {
      const double gmacs = double(t.M) * t.K * t.N / secs / 1e9;
      std::printf("  %6.1f GMAC/s", gmacs);
      if (const Ceiling* ceil = CeilingOf(name))
        std::printf("  %3.0f%% of %s", 100 * gmacs / ceil->gmacs, ceil->name);
    }
    std::printf("\n");
  };
  for (CpuPath path : {CpuPath::kPortable, CpuPath::kAvx2, CpuPath::kVnni}) {
    if (!CpuSupports(path)) continue;
    std::fill(got.begin(), got.end(), 0);
    GemmWorkspace ws;
    RowFiller fill = [&](int64_t r, int16_t* dst) {
      for (int k = 0; k < t.K; ++k) dst[k] = static_cast<int16_t>(a[r * t.K + k] - zp);
    };
    report(PathName(path), BestOf(timing, [&] {
             GemmRows(pb, 0, t.M, 0, t.N, fill, sink, MicroKernelFor(path), &ws, kMB);
           }));
  }
  // The byte kernels: AVX2 vpmaddubsw where the weight pairs fit, VNNI vpdpbusd and AMX
  // tdpbusd always.
  for (CpuPath path : {CpuPath::kAvx2, CpuPath::kVnni, CpuPath::kAmx}) {
    if (!CpuSupports(path)) continue;
    PackedB pb8;
    PackB(b.data(), t.K, t.N, t.N, &pb8, path);
    if (!UseU8(pb8)) continue;
    const std::string name = std::string(PathName(path)) + "-u8";
    std::fill(got.begin(), got.end(), 0);
    GemmWorkspace ws;
    RowFillerU8 fill8 = [&](int64_t r, int count, uint8_t* dst, int ld) {
      for (int i = 0; i < count; ++i) std::memcpy(dst + i * ld, &a[(r + i) * t.K], t.K);
    };
    report(name.c_str(),
           BestOf(timing, [&] { GemmRowsU8(pb8, zp, 0, t.M, 0, t.N, fill8, sink, &ws, kMB); }));
    if (t.K % 4 == 0) {  // rows read in place, as a 1x1 conv or a MatMul does
      std::fill(got.begin(), got.end(), 0);
      report((name + "-inplace").c_str(), BestOf(timing, [&] {
               GemmRowsU8(pb8, zp, 0, t.M, 0, t.N, fill8, sink, &ws, kMB, a.data(), t.K, t.M);
             }));
    }
  }
  return ok;
}

// The CPU's own ceilings, one thread: fp32 FMA (what a float conv can reach) and the AVX2
// byte kernel's instruction triple (vpmaddubsw + vpmaddwd + vpaddd, 32 products, bound by its
// two multiplies), on independent register chains with nothing loaded from memory (FMA: the
// operands change every iteration, so the compiler cannot fold the products away).
constexpr long kCeilingIters = 100000000;

__attribute__((noinline, target("avx2,fma"))) double FmaCeiling() {
  // Named registers, not arrays, so that every chain stays in a register.
  __m256 f0 = _mm256_set1_ps(1.0f), f1 = f0, f2 = f0, f3 = f0, f4 = f0, f5 = f0, f6 = f0,
         f7 = f0, f8 = f0, f9 = f0;
  const __m256 fm = _mm256_set1_ps(0.999999f), fa = _mm256_set1_ps(1e-7f);
  const std::clock_t c0 = std::clock();
  for (long i = 0; i < kCeilingIters; ++i) {
#define QG_F(j) f##j = _mm256_fmadd_ps(f##j, fm, fa);
    QG_F(0) QG_F(1) QG_F(2) QG_F(3) QG_F(4) QG_F(5) QG_F(6) QG_F(7) QG_F(8) QG_F(9)
#undef QG_F
  }
  const double secs = double(std::clock() - c0) / CLOCKS_PER_SEC;
  const __m256 sum = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(f0, f1), _mm256_add_ps(f2, f3)),
                                   _mm256_add_ps(_mm256_add_ps(f4, f5), _mm256_add_ps(
                                       _mm256_add_ps(f6, f7), _mm256_add_ps(f8, f9))));
  volatile float keep = sum[0];
  (void)keep;
  return kCeilingIters * 10.0 * 8 / secs / 1e9;
}

__attribute__((noinline, target("avx2"))) double ByteCeiling() {
  // The triple's bound is its two multiply uops (vpmaddubsw, vpmaddwd) per 32 products: both
  // issue on the same two ports, while its vpaddd can go to a third. So this times the multiply
  // alone, on 12 independent register chains (latency 5 at 2 a cycle needs 10), and counts two
  // multiplies per 32 products. (Timing the whole triple in a loop measured 80-90 GMAC/s here,
  // below what the 6x16 kernel itself reaches: some of its adds land on the multiply ports.)
  long n = kCeilingIters;
  const std::clock_t c0 = std::clock();
  __asm__ volatile(
      "vpcmpeqw %%ymm15, %%ymm15, %%ymm15\n\tvpsrlw $15, %%ymm15, %%ymm15\n\t"  // ones
      "vmovdqa %%ymm15, %%ymm0\n\tvmovdqa %%ymm15, %%ymm1\n\tvmovdqa %%ymm15, %%ymm2\n\t"
      "vmovdqa %%ymm15, %%ymm3\n\tvmovdqa %%ymm15, %%ymm4\n\tvmovdqa %%ymm15, %%ymm5\n\t"
      "vmovdqa %%ymm15, %%ymm6\n\tvmovdqa %%ymm15, %%ymm7\n\tvmovdqa %%ymm15, %%ymm8\n\t"
      "vmovdqa %%ymm15, %%ymm9\n\tvmovdqa %%ymm15, %%ymm10\n\tvmovdqa %%ymm15, %%ymm11\n\t"
      "1:\n\t"
      "vpmaddwd %%ymm15, %%ymm0, %%ymm0\n\tvpmaddwd %%ymm15, %%ymm1, %%ymm1\n\t"
      "vpmaddwd %%ymm15, %%ymm2, %%ymm2\n\tvpmaddwd %%ymm15, %%ymm3, %%ymm3\n\t"
      "vpmaddwd %%ymm15, %%ymm4, %%ymm4\n\tvpmaddwd %%ymm15, %%ymm5, %%ymm5\n\t"
      "vpmaddwd %%ymm15, %%ymm6, %%ymm6\n\tvpmaddwd %%ymm15, %%ymm7, %%ymm7\n\t"
      "vpmaddwd %%ymm15, %%ymm8, %%ymm8\n\tvpmaddwd %%ymm15, %%ymm9, %%ymm9\n\t"
      "vpmaddwd %%ymm15, %%ymm10, %%ymm10\n\tvpmaddwd %%ymm15, %%ymm11, %%ymm11\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      "vzeroupper\n\t"
      : "+r"(n)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm15", "cc");
  const double secs = double(std::clock() - c0) / CLOCKS_PER_SEC;
  return kCeilingIters * 12.0 / 2 * 32 / secs / 1e9;  // two multiplies per 32 products
}

// The AVX-512 ceilings: fp32 FMA on zmm (what float TF's oneDNN uses on such a CPU), vpdpbusd
// (64 u8 x s8 products, the vnni byte kernel) and vpdpwssd (32 int16 products, MicroVnni).
// One timing loop (ZmmCeiling) for the three; each instruction is an Op: its operands, a
// chain's start, one step, and how the chains are summed so that none is optimized away.
#define QG_ZMM __attribute__((always_inline, target("avx512f,avx512bw,avx512vnni")))

struct FmaZmm {
  using V = __m512;
  static constexpr double kProducts = 16;
  V m, a;
  static QG_ZMM FmaZmm Make() { return {_mm512_set1_ps(0.999999f), _mm512_set1_ps(1e-7f)}; }
  static QG_ZMM V Chain(int j) { return _mm512_set1_ps(1.0f + j); }
  QG_ZMM V Step(V d) const { return _mm512_fmadd_ps(d, m, a); }
  static QG_ZMM V Zero() { return _mm512_setzero_ps(); }
  static QG_ZMM V Add(V s, V d) { return _mm512_add_ps(s, d); }
  static QG_ZMM double Reduce(V s) { return _mm512_reduce_add_ps(s); }
};

// kBytes: vpdpbusd (bytes), else vpdpwssd (words).
template <bool kBytes>
struct DotZmm {
  using V = __m512i;
  static constexpr double kProducts = kBytes ? 64 : 32;
  V x, w;
  static QG_ZMM DotZmm Make() {
    V x = _mm512_set1_epi32(0x01020304), w = _mm512_set1_epi32(0x05060708);
    __asm__ volatile("" : "+v"(x), "+v"(w));  // opaque: nothing to fold
    return {x, w};
  }
  static QG_ZMM V Chain(int j) { return _mm512_set1_epi32(j); }
  QG_ZMM V Step(V d) const {
    return kBytes ? _mm512_dpbusd_epi32(d, x, w) : _mm512_dpwssd_epi32(d, x, w);
  }
  static QG_ZMM V Zero() { return _mm512_setzero_si512(); }
  static QG_ZMM V Add(V s, V d) { return _mm512_add_epi32(s, d); }
  static QG_ZMM double Reduce(V s) { return _mm512_reduce_add_epi32(s); }
};

// Twelve independent chains of Op's instruction (latency 4-5 cycles, two per cycle), in named
// registers (an X-macro), not an array, so that every chain stays in a register.
#define QG_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
template <typename Op>
__attribute__((noinline, target("avx512f,avx512bw,avx512vnni"))) double ZmmCeiling() {
  const Op op = Op::Make();
#define QG_DECL(j) typename Op::V d##j = Op::Chain(j);
  QG_CHAINS(QG_DECL)
#undef QG_DECL
  const std::clock_t t0 = std::clock();
  for (long i = 0; i < kCeilingIters / 2; ++i) {
#define QG_STEP(j) d##j = op.Step(d##j);
    QG_CHAINS(QG_STEP)
#undef QG_STEP
  }
  const double secs = double(std::clock() - t0) / CLOCKS_PER_SEC;
  typename Op::V sum = Op::Zero();
#define QG_SUM(j) sum = Op::Add(sum, d##j);
  QG_CHAINS(QG_SUM)
#undef QG_SUM
  volatile double keep = Op::Reduce(sum);
  (void)keep;
  return kCeilingIters / 2 * 12.0 * Op::kProducts / secs / 1e9;
}
#undef QG_CHAINS
#undef QG_ZMM

void Ceilings() {
  std::printf("ceilings, one thread (GMAC/s):");
  if (qg::CpuSupports(qg::CpuPath::kAvx2) && __builtin_cpu_supports("fma")) {
    const double fma = FmaCeiling(), u8 = ByteCeiling();
    std::printf(" fp32 FMA ymm %.1f, u8 triple ymm %.1f", fma, u8);
    g_ceilings.push_back({"avx2-u8", {"u8 triple", u8}});
    g_ceilings.push_back({"avx2-u8-inplace", {"u8 triple", u8}});
  }
  if (qg::CpuSupports(qg::CpuPath::kVnni)) {
    const double f512 = ZmmCeiling<FmaZmm>(), dpbusd = ZmmCeiling<DotZmm<true>>(),
                 dpwssd = ZmmCeiling<DotZmm<false>>();
    std::printf(", fp32 FMA zmm %.1f, vpdpbusd zmm %.1f, vpdpwssd zmm %.1f", f512, dpbusd, dpwssd);
    g_ceilings.push_back({"vnni-u8", {"vpdpbusd", dpbusd}});
    g_ceilings.push_back({"vnni-u8-inplace", {"vpdpbusd", dpbusd}});
    g_ceilings.push_back({"vnni", {"vpdpwssd", dpwssd}});
    if (qg::CpuSupports(qg::CpuPath::kAmx)) {
      const double amx = AmxCeiling();
      std::printf(", AMX tdpbusd %.1f", amx);
      g_ceilings.push_back({"amx-u8", {"tdpbusd", amx}});
      g_ceilings.push_back({"amx-u8-inplace", {"tdpbusd", amx}});
    }
    std::printf("\n  (float TF's ceiling here is the zmm FMA; vnni-u8 / fp32 zmm = %.2fx)", dpbusd / f512);
  }
  std::printf("\n");
}


}  // namespace

int main() {
  std::mt19937 rng(1234);
  std::printf("selected path: %s%s\n", qg::PathName(qg::SelectedPath()),
              qg::PathError().empty() ? "" : (" (QG_CPU_PATH error: " + qg::PathError() + ")").c_str());
  bool ok = true;
  const Case cases[] = {{1, 1, 1, 127},   {7, 3, 5, 127},     {13, 257, 17, 127},
                        {50, 513, 33, 64}, {6, 1000, 16, 64}, {97, 300, 70, 127}, {41, 301, 37, -127}, {12, 7, 16, -128}, {23, 64, 40, -127}, {600, 1032, 20, 64}};
  for (const Case& c : cases) ok = Run(c, &rng, false) && ok;
  Ceilings();
  for (const Case& c : {Case{2048, 576, 64, 127}, Case{5041, 720, 192, 64}, Case{289, 1728, 384, 64}, Case{1225, 864, 96, 64}})
    ok = Run(c, &rng, true) && ok;
  ok = Run({2048, 576, 64, 64}, &rng, true) && ok;
  std::printf(ok ? "gemm-check: all paths exact\n" : "gemm-check: MISMATCH\n");
  return ok ? 0 : 1;
}
