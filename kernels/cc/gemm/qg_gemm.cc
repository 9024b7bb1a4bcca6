// Path selection, weight packing, the portable micro-kernel and the blocked GEMM driver.
#include "qg_gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <cpuid.h>

namespace qg {
namespace {

struct PathChoice {
  CpuPath path = CpuPath::kPortable;
  std::string error;
};

PathChoice Choose() {
  PathChoice choice;
  CpuPath best = CpuSupports(CpuPath::kAmx)    ? CpuPath::kAmx
                 : CpuSupports(CpuPath::kVnni) ? CpuPath::kVnni
                 : CpuSupports(CpuPath::kAvx2) ? CpuPath::kAvx2
                                               : CpuPath::kPortable;
  choice.path = best;
  const char* env = std::getenv("QG_CPU_PATH");
  if (env == nullptr || env[0] == '\0') return choice;
  std::string want(env);
  CpuPath forced;
  if (want == "amx") {
    forced = CpuPath::kAmx;
  } else if (want == "vnni") {
    forced = CpuPath::kVnni;
  } else if (want == "avx2") {
    forced = CpuPath::kAvx2;
  } else if (want == "portable") {
    forced = CpuPath::kPortable;
  } else {
    choice.error = "QG_CPU_PATH='" + want + "' is not one of amx, vnni, avx2, portable";
    return choice;
  }
  if (!CpuSupports(forced)) {
    choice.error = "QG_CPU_PATH=" + want + " but this CPU lacks " +
                   (forced == CpuPath::kAmx    ? "AMX (amx-tile, amx-int8, AVX-512 VNNI, and the "
                                                   "OS's permission for the tile state)"
                    : forced == CpuPath::kVnni ? "AVX-512 VNNI (avx512f, avx512bw, avx512vl, avx512vnni)"
                                               : "AVX2") +
                   "; unset it or use QG_CPU_PATH=avx2 or portable";
    return choice;
  }
  choice.path = forced;
  return choice;
}

const PathChoice& Chosen() {
  static const PathChoice choice = Choose();
  return choice;
}

}  // namespace

bool CpuSupports(CpuPath path) {
  __builtin_cpu_init();
  switch (path) {
    case CpuPath::kPortable:
      return true;
    case CpuPath::kAvx2:
      return __builtin_cpu_supports("avx2");
    case CpuPath::kAmx: {
      unsigned a, b, c, d;  // CPUID.(7, 0):EDX bit 24 AMX-TILE, bit 25 AMX-INT8
      if (!CpuSupports(CpuPath::kVnni) || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
      if (!((d >> 24) & 1) || !((d >> 25) & 1)) return false;
      static const bool permitted = AmxPermitted();
      return permitted;
    }
    case CpuPath::kVnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

CpuPath SelectedPath() { return Chosen().path; }
const std::string& PathError() { return Chosen().error; }

const char* PathName(CpuPath path) {
  switch (path) {
    case CpuPath::kAmx:
      return "amx";
    case CpuPath::kVnni:
      return "vnni";
    case CpuPath::kAvx2:
      return "avx2";
    case CpuPath::kPortable:
      return "portable";
  }
  return "?";
}

MicroKernel MicroKernelFor(CpuPath path) {
  switch (path) {
    case CpuPath::kAmx:
    case CpuPath::kVnni:
      return MicroVnni;
    case CpuPath::kAvx2:
      return MicroAvx2;
    case CpuPath::kPortable:
      break;
  }
  return MicroPortable;
}

void MicroPortable(const int16_t* a, int lda, const int16_t* b, int kpairs, int32_t* c,
                   int ldc, bool accumulate) {
  int32_t acc[kMR][kNR];
  for (int r = 0; r < kMR; ++r)
    for (int n = 0; n < kNR; ++n) acc[r][n] = accumulate ? c[r * ldc + n] : 0;
  // Row by row with its own pointer (size_t offsets): indexing a[r * lda + 2 * k] inside the
  // k loop let GCC's vectorizer read past the kMR rows for large lda (SIGSEGV at K = 65,000).
  for (int r = 0; r < kMR; ++r) {
    const int16_t* ar = a + static_cast<size_t>(r) * lda;
    int32_t* accr = acc[r];
    for (int k = 0; k < kpairs; ++k) {
      const int16_t* bk = b + static_cast<size_t>(2 * kNR) * k;
      const int32_t a0 = ar[2 * k], a1 = ar[2 * k + 1];
      for (int n = 0; n < kNR; ++n) accr[n] += a0 * bk[2 * n] + a1 * bk[2 * n + 1];
    }
  }
  for (int r = 0; r < kMR; ++r)
    for (int n = 0; n < kNR; ++n) c[r * ldc + n] = acc[r][n];
}

static bool PairsFit(const int8_t* b, int K, int N, int ldb);
static void PackB8(const int8_t* b, int K, int N, int ldb, PackedB* out, int kstep);

void PackB(const int8_t* b, int K, int N, int ldb, PackedB* out, CpuPath path) {
  out->K = K;
  out->N = N;
  out->Kp = (K + 1) & ~1;
  out->Np = (N + kNR - 1) / kNR * kNR;
  out->data.assign(static_cast<size_t>(out->Kp) * out->Np, 0);
  for (int p = 0; p < out->Np / kNR; ++p) {
    int16_t* panel = out->data.data() + static_cast<size_t>(p) * out->Kp * kNR;
    const int ncols = std::min(kNR, N - p * kNR);
    for (int k = 0; k < K; ++k) {
      const int8_t* row = b + static_cast<size_t>(k) * ldb + p * kNR;
      int16_t* dst = panel + (k / 2) * 2 * kNR + (k & 1);
      for (int n = 0; n < ncols; ++n) dst[2 * n] = row[n];
    }
  }
  out->pairs_fit = PairsFit(b, K, N, ldb);
  out->byte_path = CpuPath::kPortable;
  out->data8.clear();
  out->colsum.clear();
  // AMX pads K to whole 64-k tiles; where that pads more than a quarter (K = 8, 16, 27, 32,
  // 72: MobileNet's first layers, the RGB stem) the VNNI kernel was measured faster
  // (tools/bench_kernels.py: 1x1 112x112x8->16 0.35 ms on AMX, 0.21 ms on VNNI).
  const int k64 = (K + 63) / 64 * 64;
  if (path == CpuPath::kAmx && 4 * K < 3 * k64) path = CpuPath::kVnni;
  if (Avx512Path(path) || (path == CpuPath::kAvx2 && out->pairs_fit)) {
    out->byte_path = path;
    PackB8(b, K, N, ldb, out, path == CpuPath::kAmx ? 64 : 4);
  }
}

bool UseU8(const PackedB& b) { return b.byte_path != CpuPath::kPortable; }

static bool PairsFit(const int8_t* b, int K, int N, int ldb) {
  for (int k = 0; k < K; k += 2) {
    for (int n = 0; n < N; ++n) {
      const int w0 = b[static_cast<size_t>(k) * ldb + n];
      const int w1 = k + 1 < K ? b[static_cast<size_t>(k + 1) * ldb + n] : 0;
      // Opposite signs cannot saturate (|a0 w0 + a1 w1| <= 255 * 128); same signs may not
      // exceed 128 together.
      if ((w0 > 0) == (w1 > 0) && std::abs(w0) + std::abs(w1) > 128) return false;
    }
  }
  return true;
}

// kstep: K is padded with zero weights to a multiple of it (4: a k-quad; 64: an AMX tile).
static void PackB8(const int8_t* b, int K, int N, int ldb, PackedB* out, int kstep) {
  out->Kq = (K + kstep - 1) / kstep * kstep;
  out->data8.assign(static_cast<size_t>(out->Kq) * out->Np, 0);
  out->colsum.assign(out->Np, 0);
  for (int p = 0; p < out->Np / kNR; ++p) {
    int8_t* panel = out->data8.data() + static_cast<size_t>(p) * out->Kq * kNR;
    const int ncols = std::min(kNR, N - p * kNR);
    for (int k = 0; k < K; ++k) {
      const int8_t* row = b + static_cast<size_t>(k) * ldb + p * kNR;
      int8_t* dst = panel + (k / 4) * 4 * kNR + (k & 3);
      for (int n = 0; n < ncols; ++n) {
        dst[4 * n] = row[n];
        out->colsum[p * kNR + n] += row[n];
      }
    }
  }
}

// K blocks of about equal size, each at most `limit` and a multiple of `step`: an even split
// leaves no short last block whose C tile loads and stores would cost more than its products.
static int KBlock(int k, int step, int limit = kKC) {
  const int blocks = (k + limit - 1) / limit;
  const int per = (k + blocks - 1) / blocks;
  return (per + step - 1) / step * step;
}

// sum (a - zp) w = sum a w - zp * colsum: the kernels start from -zp * colsum (wrapping
// int32 arithmetic; the true result fits int32).
static int32_t MinusZeroPointTimes(int zero_point, int64_t column_sum) {
  const int64_t corr = static_cast<int64_t>(zero_point) * column_sum;
  return static_cast<int32_t>(static_cast<uint32_t>(0) - static_cast<uint32_t>(corr));
}

const int32_t* ZeroPointInit(const PackedB& b, int zero_point, int n0, int ldc,
                             GemmWorkspace* ws) {
  ws->init.resize(ldc);
  for (int n = 0; n < ldc; ++n) ws->init[n] = MinusZeroPointTimes(zero_point, b.colsum[n0 + n]);
  return ws->init.data();
}

void SliceColumnSums(const int8_t* b, int K, int N, int ldb, int slices, PackedB* out) {
  out->slices = slices;
  out->slice_colsum.assign(static_cast<size_t>(slices) * out->Np, 0);
  const int per = K / slices;
  for (int k = 0; k < K; ++k) {
    int32_t* sums = out->slice_colsum.data() + static_cast<size_t>(k / per) * out->Np;
    for (int n = 0; n < N; ++n) sums[n] += b[static_cast<size_t>(k) * ldb + n];
  }
}

KRange SliceRange(const PackedB& b, int s0, int s1) {
  KRange r;
  if (s0 >= s1 || b.slices == 0) {
    r.k1 = b.Kq;
    return r;
  }
  const int per = b.K / b.slices;
  r.k0 = s0 * per;
  r.k1 = s1 == b.slices ? b.Kq : s1 * per;
  return r;
}

void ZeroPointInitSlices(const PackedB& b, int zero_point, int n0, int ldc, int s0, int s1,
                         int32_t* init) {
  for (int n = 0; n < ldc; ++n) {
    int64_t sum = 0;
    for (int s = s0; s < s1; ++s) sum += b.slice_colsum[static_cast<size_t>(s) * b.Np + n0 + n];
    init[n] = MinusZeroPointTimes(zero_point, sum);
  }
}

void GemmRowsU8(const PackedB& b, int zero_point, int64_t r0, int64_t r1, int n0, int n1,
                const RowFillerU8& fill, const TileSink& sink, GemmWorkspace* ws, int mb,
                const uint8_t* in_place, int64_t in_place_ld, int64_t in_place_rows, int s0,
                int s1) {
  const int Kq = b.Kq;
  const int ldc = (n1 - n0 + kNR - 1) / kNR * kNR;
  if (ws->a8.size() < static_cast<size_t>(mb) * Kq) ws->a8.resize(static_cast<size_t>(mb) * Kq);
  if (ws->c.size() < static_cast<size_t>(mb) * ldc) ws->c.resize(static_cast<size_t>(mb) * ldc);
  // AMX runs all of K (whole 64-byte tiles): the padding taps then add 0, as always.
  const bool sliced = s0 < s1 && b.slices > 0 && b.byte_path != CpuPath::kAmx;
  const KRange kr = SliceRange(b, sliced ? s0 : 0, sliced ? s1 : 0);
  const int32_t* init;
  if (sliced) {
    ws->init.resize(ldc);
    ZeroPointInitSlices(b, zero_point, n0, ldc, s0, s1, ws->init.data());
    init = ws->init.data();
  } else {
    init = ZeroPointInit(b, zero_point, n0, ldc, ws);
  }
  if (b.byte_path == CpuPath::kAmx) {
    GemmRowsAmxU8(b, init, r0, r1, n0, n1, fill, sink, ws, mb, in_place,
                  in_place_ld, in_place_rows);
    return;
  }
  if (b.byte_path == CpuPath::kVnni) {
    GemmRowsVnniU8(b, init, r0, r1, n0, n1, fill, sink, ws, mb, in_place,
                   in_place_ld, kr);
    return;
  }
  const bool direct = in_place != nullptr && Kq == b.K;
  const int kc = KBlock(kr.k1 - kr.k0, 4, kKCU8);
  uint8_t* a = ws->a8.data();
  int32_t* c = ws->c.data();
  const uint8_t* panel_a[kMB / kMR];
  int panel_lda[kMB / kMR];
  for (int64_t rc = r0; rc < r1; rc += mb) {
    const int rows = static_cast<int>(std::min<int64_t>(mb, r1 - rc));
    const int panels = (rows + kMR - 1) / kMR;
    for (int p = 0; p < panels; ++p) {
      if (direct && (p + 1) * kMR <= rows) {
        panel_a[p] = in_place + (rc + p * kMR) * in_place_ld;
        panel_lda[p] = static_cast<int>(in_place_ld);
        continue;
      }
      uint8_t* dst = a + static_cast<size_t>(p) * kMR * Kq;
      panel_a[p] = dst;
      panel_lda[p] = Kq;
      const int count = std::min(kMR, rows - p * kMR);
      fill(rc + p * kMR, count, dst, Kq);
      ZeroRowTails(dst, count, b.K, Kq);
      if (count < kMR) std::memset(dst + count * Kq, 0, static_cast<size_t>(kMR - count) * Kq);
    }
    for (int kb = kr.k0; kb < kr.k1; kb += kc) {
      const int kquads = std::min(kc, kr.k1 - kb) / 4;
      for (int n = n0; n < n1; n += kNR) {
        const int8_t* bp = b.panel8(n / kNR) + static_cast<size_t>(kb) * kNR;
        // While the first row panel runs, the next weight block (next panel, else the next K
        // block's first) is fetched line by line: on the first chunk the weights come from L3
        // or memory, which the hardware prefetchers, restarting at every 4 KiB page, follow
        // slowly (ResNet-50's 7x7 convs at batch 1; docs/profile.md, fourth pass).
        const bool last_n = n + kNR >= n1;
        const int next_kb = last_n ? kb + kc : kb;
        const int8_t* pf = nullptr;
        int pf_lines = 0;
        if (next_kb < kr.k1) {
          pf = b.panel8((last_n ? n0 : n + kNR) / kNR) + static_cast<size_t>(next_kb) * kNR;
          pf_lines = std::min(kc, kr.k1 - next_kb) / 4;
        }
        for (int p = 0; p < panels; ++p) {
          MicroAvx2U8(panel_a[p] + kb, panel_lda[p], bp, kquads,
                      c + static_cast<size_t>(p) * kMR * ldc + (n - n0), ldc, kb > kr.k0,
                      init + (n - n0), pf, p == 0 ? std::min(pf_lines, kquads) : 0);
        }
      }
    }
    sink(rc, rows, n0, n1, c, ldc);
  }
}

void GemmRows(const PackedB& b, int64_t r0, int64_t r1, int n0, int n1, const RowFiller& fill,
              const TileSink& sink, MicroKernel micro, GemmWorkspace* ws, int mb) {
  const int Kp = b.Kp;
  const int ldc = (n1 - n0 + kNR - 1) / kNR * kNR;
  if (ws->a.size() < static_cast<size_t>(mb) * Kp) ws->a.resize(static_cast<size_t>(mb) * Kp);
  if (ws->c.size() < static_cast<size_t>(mb) * ldc) ws->c.resize(static_cast<size_t>(mb) * ldc);
  std::vector<int16_t>& a = ws->a;
  AlignedVector<int32_t>& c = ws->c;
  const int kc = KBlock(Kp, 2);
  for (int64_t rc = r0; rc < r1; rc += mb) {
    const int rows = static_cast<int>(std::min<int64_t>(mb, r1 - rc));
    const int panels = (rows + kMR - 1) / kMR;
    for (int i = 0; i < panels * kMR; ++i) {
      int16_t* dst = a.data() + static_cast<size_t>(i) * Kp;
      if (i < rows) {
        fill(rc + i, dst);
        if (b.K != Kp) dst[b.K] = 0;
      } else {
        std::memset(dst, 0, sizeof(int16_t) * Kp);
      }
    }
    for (int kb = 0; kb < Kp; kb += kc) {
      const int kpairs = std::min(kc, Kp - kb) / 2;
      for (int n = n0; n < n1; n += kNR) {
        const int16_t* bp = b.panel(n / kNR) + static_cast<size_t>(kb) * kNR;
        for (int p = 0; p < panels; ++p) {
          micro(a.data() + static_cast<size_t>(p) * kMR * Kp + kb, Kp, bp, kpairs,
                c.data() + static_cast<size_t>(p) * kMR * ldc + (n - n0), ldc, kb > 0);
        }
      }
    }
    sink(rc, rows, n0, n1, c.data(), ldc);
  }
}

}  // namespace qg
