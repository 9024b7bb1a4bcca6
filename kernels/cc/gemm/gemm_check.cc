// Standalone (TF-free) check of the GEMM core: every micro-kernel this CPU can run (portable,
// AVX2 int16, AVX2 byte where the weights allow it, AVX-512 VNNI) against a scalar reference on
// random shapes, plus a rough single-thread speed. `make gemm-check`; exits 1 on a mismatch.
// Useful on a machine with VNNI, which the development machine lacks.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <cstring>
#include <random>
#include <vector>

#include "qg_gemm.h"

namespace {

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
    if (timing) std::printf("  %.1f GMAC/s", double(t.M) * t.K * t.N / secs / 1e9);
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
  if (pb.pairs_fit && CpuSupports(CpuPath::kAvx2)) {
    std::fill(got.begin(), got.end(), 0);
    GemmWorkspace ws;
    RowFillerU8 fill8 = [&](int64_t r, int count, uint8_t* dst, int ld) {
      for (int i = 0; i < count; ++i) std::memcpy(dst + i * ld, &a[(r + i) * t.K], t.K);
    };
    report("avx2-u8",
           BestOf(timing, [&] { GemmRowsU8(pb, zp, 0, t.M, 0, t.N, fill8, sink, &ws, kMB); }));
    if (t.K % 4 == 0) {  // rows read in place, as a 1x1 conv or a MatMul does
      std::fill(got.begin(), got.end(), 0);
      report("avx2-u8-inplace", BestOf(timing, [&] {
               GemmRowsU8(pb, zp, 0, t.M, 0, t.N, fill8, sink, &ws, kMB, a.data(), t.K);
             }));
    }
  }
  return ok;
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
  for (const Case& c : {Case{2048, 576, 64, 127}, Case{5041, 720, 192, 64}, Case{289, 1728, 384, 64}, Case{1225, 864, 96, 64}})
    ok = Run(c, &rng, true) && ok;
  ok = Run({2048, 576, 64, 64}, &rng, true) && ok;
  std::printf(ok ? "gemm-check: all paths exact\n" : "gemm-check: MISMATCH\n");
  return ok ? 0 : 1;
}
