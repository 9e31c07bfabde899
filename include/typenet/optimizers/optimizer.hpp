/// @file optimizers/optimizer.hpp
/// The `Optimizer` concept and the base that gives optimizers their common parts.
///
/// An optimizer updates parameters from their gradients: `step(params)` receives every
/// parameter of the model (`ParamRef`, in the model's visiting order, frozen ones
/// included with `trainable == false`) and updates the trainable ones. It keeps
/// per-parameter state (momentum, moments) by position, so the model must visit its
/// parameters in the same order every step (it does).
///
/// Writing one: derive from `OptimizerBase<YourOptimizer, YourState>` (CRTP) and
/// implement `void update(State&, float* w, const float* g, std::size_t n, float lr,
/// float grad_scale)`; the base handles state allocation, skipping frozen parameters,
/// per-layer learning-rate multipliers, the iteration count and gradient clipping.
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/core/parameter.hpp"
#include "typenet/kernels/parallel.hpp"

namespace typenet {

namespace detail {
/// Run an optimizer's elementwise update `f(i0, i1)` over values [0, n): split into
/// contiguous ranges over the threads for large tensors (the update streams its arrays and
/// is bound by memory); every value gets the same expression, whatever the thread count.
template <class F>
void update_ranges(std::size_t n, F&& f) {
    kernels::parallel_ranges(kernels::threads_for(double(n), 65536.0), n, f);
}
}  // namespace detail

/// An optimizer (see the file comment).
template <class O>
concept Optimizer = requires(O& o, const O& co, std::vector<ParamRef>& ps, float lr) {
    o.step(ps);
    { co.learning_rate() } -> std::convertible_to<float>;
    o.set_learning_rate(lr);
};

/// Common parts of typenet's optimizers. `State` must have a member `std::size_t size`
/// and be initialisable by the derived class's `init_state(State&, std::size_t n)`.
template <class Derived, class State>
class OptimizerBase {
public:
    using state_type = State;

    explicit OptimizerBase(float learning_rate) : learning_rate_(learning_rate) {
        if (!(learning_rate >= 0.0f)) throw config_error("optimizer: learning rate must be >= 0");
    }

    /// Update every trainable parameter from its gradient.
    void step(std::vector<ParamRef>& params) {
        if (states_.size() != params.size()) states_.resize(params.size());
        ++iterations_;
        float scale = 1.0f;
        if (clipnorm_ > 0.0f) {
            double sq = 0.0;
            for (const ParamRef& p : params)
                if (p.trainable)
                    for (std::size_t i = 0; i < p.size; ++i) sq += static_cast<double>(p.grad[i]) * p.grad[i];
            const double norm = std::sqrt(sq);
            last_grad_norm_ = static_cast<float>(norm);
            if (norm > clipnorm_) scale = static_cast<float>(clipnorm_ / norm);
        }
        for (std::size_t k = 0; k < params.size(); ++k) {
            ParamRef& p = params[k];
            if (!p.trainable) continue;
            State& s = states_[k];
            if (s.size != p.size) self().init_state(s, p.size);
            self().update(s, p.value, p.grad, p.size, learning_rate_ * p.lr_multiplier, scale);
            p.mark_changed();
        }
    }

    float learning_rate() const noexcept { return learning_rate_; }
    void set_learning_rate(float lr) noexcept { learning_rate_ = lr; }
    /// Number of steps taken.
    std::uint64_t iterations() const noexcept { return iterations_; }
    /// Rescale the gradients so their global L2 norm is at most `c` (0 = off).
    void set_clipnorm(float c) noexcept { clipnorm_ = c; }
    float clipnorm() const noexcept { return clipnorm_; }
    /// Global gradient norm of the last step (computed when clipping is on).
    float last_grad_norm() const noexcept { return last_grad_norm_; }
    /// Forget all per-parameter state (moments) and the iteration count.
    void reset() {
        states_.clear();
        iterations_ = 0;
    }

protected:
    std::uint64_t iterations_ = 0;

private:
    Derived& self() { return static_cast<Derived&>(*this); }
    float learning_rate_;
    float clipnorm_ = 0.0f;
    float last_grad_norm_ = 0.0f;
    std::vector<State> states_;
};

}  // namespace typenet
