/// @file kernels/parallel.hpp
/// How kernels split work between OpenMP threads.
///
/// Kernels open a parallel region only when it pays: never inside another parallel
/// region (`omp_in_parallel()`), never for tiny problems. Work is split statically
/// into contiguous ranges, so a given thread count always gives the same split and
/// therefore bit-identical results run to run; or, where no result depends on which
/// thread computes a unit of work or in which order (each unit writes its own outputs
/// and its own partial sums), handed out a unit at a time (`UnitQueue`), so that a
/// thread slowed by another process on its core does not hold the others up at the end
/// of the region.
#pragma once

#include <atomic>
#include <cstddef>
#include <exception>

#include "typenet/config.hpp"

namespace typenet::kernels {

/// Number of threads a kernel doing `work` units (roughly: floating-point operations
/// or bytes touched) should use: 1 inside a parallel region or below `min_work` per
/// thread, otherwise up to `max_threads()`.
inline int threads_for(double work, double min_work_per_thread = 40000.0) noexcept {
#if TYPENET_HAS_OPENMP
    if (omp_in_parallel()) return 1;
    int t = max_threads();
    if (t <= 1) return 1;
    const double by_work = work / min_work_per_thread;
    if (by_work < 2.0) return 1;
    if (by_work < t) t = static_cast<int>(by_work);
    return t < 1 ? 1 : t;
#else
    (void)work;
    (void)min_work_per_thread;
    return 1;
#endif
}

/// The calling thread's index in the current team (0 outside a parallel region).
inline int thread_index() noexcept {
#if TYPENET_HAS_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/// Number of threads in the current team (1 outside a parallel region).
inline int team_size() noexcept {
#if TYPENET_HAS_OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/// The part `[begin, end)` of `[0, n)` that part `i` of `parts` gets (contiguous,
/// sizes differ by at most one).
struct Range {
    std::size_t begin, end;
};

/// Split `[0, n)` into `parts` contiguous ranges and return range `i`.
constexpr Range split_range(std::size_t n, std::size_t parts, std::size_t i) noexcept {
    const std::size_t q = n / parts, r = n % parts;
    const std::size_t b = i * q + (i < r ? i : r);
    return {b, b + q + (i < r ? 1 : 0)};
}

/// Run `f(thread, nthreads)` on `nthreads` threads (just `f(0, 1)` when it is 1).
/// An exception thrown by `f` on any thread (for example `std::bad_alloc` from a
/// per-thread buffer) is rethrown on the caller after the region; `f` must then not
/// have left other threads waiting at a barrier (kernels allocate every per-thread
/// buffer they need before their first barrier from the calling thread).
template <class F>
void run_parallel(int nthreads, F&& f) {
#if TYPENET_HAS_OPENMP
    if (nthreads > 1) {
        std::exception_ptr error;
        TYPENET_OMP(parallel num_threads(nthreads))
        {
            try {
                f(omp_get_thread_num(), omp_get_num_threads());
            } catch (...) {
                TYPENET_OMP(critical(typenet_run_parallel_error))
                if (!error) error = std::current_exception();
            }
        }
        if (error) std::rethrow_exception(error);
        return;
    }
#endif
    (void)nthreads;
    f(0, 1);
}

/// Run `f(begin, end)` over `[0, n)` split statically into contiguous ranges over
/// `nthreads` threads.
template <class F>
void parallel_ranges(int nthreads, std::size_t n, F&& f) {
    run_parallel(nthreads, [&](int t, int nt) {
        const Range r = split_range(n, static_cast<std::size_t>(nt), static_cast<std::size_t>(t));
        if (r.begin < r.end) f(r.begin, r.end);
    });
}

/// Units [0, n) handed out one at a time, in increasing order, to whichever thread of a
/// region asks next: `while (q.next(u)) work(u);` on every thread. Only for units whose
/// results do not depend on the thread that computes them (see the file comment).
/// Shared by the team: construct it before the region.
class UnitQueue {
public:
    explicit UnitQueue(std::size_t n) noexcept : n_(n) {}
    UnitQueue(const UnitQueue&) = delete;
    UnitQueue& operator=(const UnitQueue&) = delete;
    /// The next unit in `u`; false when none is left.
    bool next(std::size_t& u) noexcept {
        u = next_.fetch_add(1, std::memory_order_relaxed);
        return u < n_;
    }

private:
    std::atomic<std::size_t> next_{0};
    std::size_t n_;
};

/// The reduction step of "each thread sums into its own copy": thread `t` of `nt`
/// writes its share of the `rows x cols` result `out` (leading dimension `cols`;
/// overwritten, or added to with `accumulate`) as the sum of the `nt` copies, copy `u`
/// at `partial + u * copy_stride` with leading dimension `ldp`, added in thread order
/// (so a given thread count always gives the same bits). Call after a barrier.
inline void reduce_thread_copies(const float* partial, std::size_t copy_stride, std::size_t ldp, std::size_t rows,
                                 std::size_t cols, float* out, bool accumulate, int t, int nt) noexcept {
    const Range rr = split_range(rows, static_cast<std::size_t>(nt), static_cast<std::size_t>(t));
    for (std::size_t r = rr.begin; r < rr.end; ++r) {
        float* dst = out + r * cols;
        for (std::size_t o = 0; o < cols; ++o) {
            float s = partial[r * ldp + o];
            for (int u = 1; u < nt; ++u) s += partial[static_cast<std::size_t>(u) * copy_stride + r * ldp + o];
            dst[o] = accumulate ? dst[o] + s : s;
        }
    }
}

}  // namespace typenet::kernels
