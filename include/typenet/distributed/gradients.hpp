/// @file distributed/gradients.hpp
/// `GradientAverager`: averages the trainable gradients over the processes after each
/// backward pass (the gradient hook of data-parallel training), in buckets.
///
/// Each process computed the gradient of the mean loss over its own b examples; the
/// mean of those P gradients is the gradient of the mean loss over the global batch
/// of P x b. The gradients of the trainable parameters are packed, in the model's
/// visiting order, into buckets of about `bucket_bytes` (a few MB: large enough that
/// the per-message latency is paid a handful of times per step, small enough that the
/// packing buffer stays in cache-sized pieces), each summed in place by one
/// MPI_Allreduce and scaled by 1/P. Frozen parameters are skipped.
///
/// Synchronised batch norm needs nothing special here: the layer sums its statistics
/// over the processes for its forward pass and its input gradient, but its gamma and
/// beta gradients are this process's own, averaged with the rest.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "typenet/core/parameter.hpp"
#include "typenet/distributed/mpi.hpp"

namespace typenet::distributed {

/// What the averaging cost so far.
struct GradientStats {
    std::size_t steps = 0;          ///< calls (training steps)
    std::size_t bytes = 0;          ///< bytes of gradient averaged per step (last step)
    std::size_t buckets = 0;        ///< allreduce calls per step (last step)
    double seconds = 0.0;           ///< total time in packing, MPI_Allreduce and unpacking
};

/// Averages gradients over a communicator (see the file comment). Use it as the
/// model's gradient hook: `model.set_gradient_hook(std::ref(averager))`.
class GradientAverager {
public:
    /// `bucket_bytes`: target size of one allreduce (at least one parameter goes in each).
    explicit GradientAverager(const Communicator& comm, std::size_t bucket_bytes = std::size_t{4} << 20)
        : comm_(comm), bucket_floats_(std::max<std::size_t>(bucket_bytes / sizeof(float), 1)) {}

    /// Replace the gradient of every trainable parameter by its mean over the processes.
    void operator()(std::vector<ParamRef>& params) {
        const auto t0 = std::chrono::steady_clock::now();
        const float inv = 1.0f / static_cast<float>(comm_.size());
        std::size_t bytes = 0, buckets = 0;
        std::vector<ParamRef*> pending;
        std::size_t filled = 0;
        auto flush = [&] {
            if (pending.empty()) return;
            if (pending.size() == 1) {  // one parameter: reduce it where it is
                ParamRef& p = *pending[0];
                comm_.allreduce(p.grad, p.size);
                for (std::size_t i = 0; i < p.size; ++i) p.grad[i] *= inv;
            } else {
                buffer_.resize(filled);
                std::size_t at = 0;
                for (ParamRef* p : pending) {
                    std::memcpy(buffer_.data() + at, p->grad, p->size * sizeof(float));
                    at += p->size;
                }
                comm_.allreduce(buffer_.data(), filled);
                at = 0;
                for (ParamRef* p : pending) {
                    const float* b = buffer_.data() + at;
                    for (std::size_t i = 0; i < p->size; ++i) p->grad[i] = b[i] * inv;
                    at += p->size;
                }
            }
            bytes += filled * sizeof(float);
            ++buckets;
            pending.clear();
            filled = 0;
        };
        if (comm_.size() > 1) {
            for (ParamRef& p : params) {
                if (!p.trainable || !p.grad || p.size == 0) continue;
                if (filled > 0 && filled + p.size > bucket_floats_) flush();
                pending.push_back(&p);
                filled += p.size;
            }
            flush();
        }
        ++stats_.steps;
        stats_.bytes = bytes;
        stats_.buckets = buckets;
        stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }

    /// Cost so far.
    const GradientStats& stats() const noexcept { return stats_; }
    /// Forget the cost so far.
    void reset_stats() noexcept { stats_ = {}; }

private:
    const Communicator& comm_;
    std::size_t bucket_floats_;
    std::vector<float> buffer_;
    GradientStats stats_;
};

}  // namespace typenet::distributed
