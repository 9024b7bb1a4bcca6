// Splitting a kernel's work among TF's intra-op threads.
#ifndef QG_KERNELS_CC_QG_PARALLEL_H_
#define QG_KERNELS_CC_QG_PARALLEL_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>

#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/platform/blocking_counter.h"

namespace qg {

// Runs unit(i) for every i in [0, units): `tasks` tasks on the intra-op pool each take the next
// unclaimed unit until none is left, while the calling thread waits. Not TF's Shard: Eigen's
// ParallelFor groups units into blocks by its cost model (10 row chunks of a conv ran as 6 + 4
// on 2 threads: ResNet-50's 3x3 on 28x28x128 at batch 1, 0.75x of oneDNN's wall at 0.93x of its
// CPU time). Not a fixed part per task either: a task that starts late (a pool thread still
// asleep) then leaves its part to the end, where claimed units let the others take over. The
// caller does not take units itself: a pool thread it wakes may be queued on its own core
// (Linux places the wakee beside the waker) and start only when the caller blocks; measured,
// the second of two halves then often began as the first ended.
inline void RunUnits(::tensorflow::OpKernelContext* ctx, int64_t units, int tasks,
                     const std::function<void(int64_t)>& unit) {
  tasks = static_cast<int>(std::min<int64_t>(tasks, units));
  if (tasks <= 1) {
    for (int64_t i = 0; i < units; ++i) unit(i);
    return;
  }
  auto* workers = ctx->device()->tensorflow_cpu_worker_threads()->workers;
  if (workers->CurrentThreadId() >= 0) {
    // Already on a pool thread (it would wait for tasks queued behind itself): Eigen's
    // ParallelFor, which works on the range in this thread too.
    workers->ParallelFor(units, int64_t{1} << 30, [&unit](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) unit(i);
    });
    return;
  }
  std::atomic<int64_t> next{0};
  ::tensorflow::BlockingCounter done(tasks);
  for (int t = 0; t < tasks; ++t) {
    workers->Schedule([&next, &done, &unit, units] {
      for (int64_t i = next.fetch_add(1); i < units; i = next.fetch_add(1)) unit(i);
      done.DecrementCount();
    });
  }
  done.Wait();
}

// TF's Shard for the element loops (copies, pools, concat, depthwise, quantize): [0, total)
// in up to 4 equal ranges a thread, run by RunUnits (work that ends late is taken over rather
// than waited for). cost_per_unit is in the callers' loose units (bytes or multiply-adds a
// unit); under kInlineCost in all the caller's thread does it alone, as Shard would.
constexpr int64_t kInlineCost = int64_t{1} << 16;
inline void ParallelRange(::tensorflow::OpKernelContext* ctx, int64_t total,
                          int64_t cost_per_unit,
                          const std::function<void(int64_t, int64_t)>& fn) {
  if (total <= 0) return;
  const int threads = ctx->device()->tensorflow_cpu_worker_threads()->workers->NumThreads();
  const double work = static_cast<double>(total) * std::max<int64_t>(1, cost_per_unit);
  const int tasks = static_cast<int>(std::min<double>(threads, work / kInlineCost));
  if (tasks <= 1) {
    fn(0, total);
    return;
  }
  const int64_t units = std::min<int64_t>(total, 4 * tasks);
  RunUnits(ctx, units, tasks, [&](int64_t u) {
    fn(total * u / units, total * (u + 1) / units);
  });
}

}  // namespace qg

#endif  // QG_KERNELS_CC_QG_PARALLEL_H_
