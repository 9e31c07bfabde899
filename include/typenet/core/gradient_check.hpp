/// @file core/gradient_check.hpp
/// Numerical gradient checking for layers and losses (central differences).
///
/// `check_layer_gradients(layer, x)` compares the gradients a layer's `backward`
/// computes, for its input and for every parameter, with central differences of the
/// scalar objective f(x) = sum(forward(x) * r), where r is a fixed random tensor (so
/// d f / d y = r is what `backward` receives). Use it on every layer you write:
///
/// ```cpp
/// MyLayer l;  Rng rng(1);  l.build({4, 8}, rng);
/// Tensor<2> x = random_tensor<2>({4, 8}, rng);
/// auto r = check_layer_gradients(l, x);
/// CHECK_MESSAGE(r.ok, r.report());
/// ```
/// The error of one gradient value is |analytic - numeric| / max(|analytic|,
/// |numeric|, floor): relative for values above `floor`, absolute below it, where
/// `floor` is the larger of `GradientCheckOptions::floor` and `relative_floor` times
/// the largest analytic gradient of the same tensor (layers compute in float: the
/// finite differences of small gradient components are mostly rounding noise).
///
/// The numeric derivative is the central difference D(h) = (f(v + h) - f(v - h)) / 2h.
/// Layers compute in float, so D carries rounding noise of order 1e-7 |f| / h; for
/// layers whose every output moves with every input (batch norm in training) that is
/// about 1e-4 absolute, and their tests use a larger tolerance.
///
/// Kinks: ReLU and ReLU6 are not differentiable at 0 and 6, and a perturbation that
/// moves some activation across a kink makes finite differences meaningless. Where
/// D(h) and D(h/2) disagree by more than `kink_tolerance` (relative), a kink lies
/// within the step and the value is skipped (counted in `skipped`). The check fails if
/// more than `max_skipped` of the values are skipped.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include "typenet/core/layer.hpp"
#include "typenet/core/parameter.hpp"
#include "typenet/core/random.hpp"
#include "typenet/core/tensor.hpp"
#include "typenet/losses/loss.hpp"

namespace typenet {

/// Settings of a gradient check.
struct GradientCheckOptions {
    double epsilon = 1e-2;          ///< finite-difference step
    double tolerance = 1e-3;        ///< largest accepted error
    double floor = 1e-2;            ///< below this magnitude, errors are absolute
    double relative_floor = 1e-2;   ///< ... or below this fraction of the tensor's largest gradient
    double kink_tolerance = 2e-2;   ///< D(h) and D(h/2) disagreeing more than this: a kink
    double max_skipped = 0.25;      ///< largest accepted share of skipped values
    std::size_t max_checks = 200;   ///< values checked per tensor (a random sample when larger)
    std::size_t max_tensors = 0;    ///< parameter tensors checked (a random sample when larger; 0: all)
    bool training = false;          ///< Context::training for the passes
    bool check_input = true;        ///< check d f / d x
    bool check_parameters = true;   ///< check every parameter's gradient
    std::uint64_t seed = 1234;      ///< for r, the sample, and Context::seed
};

/// Outcome of a gradient check.
struct GradientCheckResult {
    bool ok = true;
    double max_error = 0.0;       ///< largest error seen
    std::string worst;            ///< where it was, with both values
    std::size_t checked = 0;      ///< number of values compared
    std::size_t skipped = 0;      ///< values skipped because a kink lay within epsilon
    std::vector<std::string> failures;

    /// One line per failure (at most 10), or a one-line summary.
    std::string report() const {
        std::ostringstream os;
        os << (ok ? "gradient check passed" : "gradient check FAILED") << ": " << checked << " values ("
           << skipped << " skipped at kinks), max error " << max_error << " at " << worst;
        for (std::size_t i = 0; i < failures.size() && i < 10; ++i) os << "\n  " << failures[i];
        return os.str();
    }
};

/// A tensor of uniform values in [lo, hi).
template <std::size_t N>
Tensor<N> random_tensor(const Shape<N>& shape, Rng& rng, float lo = -1.0f, float hi = 1.0f) {
    Tensor<N> t(shape);
    for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = rng.uniform(lo, hi);
    return t;
}

namespace detail {

inline std::vector<std::size_t> sample_indices(std::size_t n, std::size_t max, Rng& rng) {
    std::vector<std::size_t> idx(n);
    for (std::size_t i = 0; i < n; ++i) idx[i] = i;
    if (n > max) {
        rng.shuffle(idx.begin(), idx.end());
        idx.resize(max);
        std::sort(idx.begin(), idx.end());
    }
    return idx;
}

/// Objective at v + h, v - h, v + h/2, v - h/2 for a value v changed by `set`.
template <class Set, class F>
std::array<double, 4> probe(float keep, double h, Set&& set, F&& objective) {
    std::array<double, 4> f{};
    const double steps[4] = {h, -h, h / 2, -h / 2};
    for (int k = 0; k < 4; ++k) {
        set(static_cast<float>(keep + steps[k]));
        f[k] = objective();
    }
    set(keep);
    return f;
}

/// Compare one value; f: the objective at the four probes.
inline void record(GradientCheckResult& res, const GradientCheckOptions& o, const std::string& what, std::size_t i,
                   double analytic, const std::array<double, 4>& f, double floor) {
    const double d1 = (f[0] - f[1]) / (2 * o.epsilon), d2 = (f[2] - f[3]) / o.epsilon;
    const double numeric = d1;
    if (std::abs(d1 - d2) > o.kink_tolerance * std::max({std::abs(d1), std::abs(d2), floor})) {
        ++res.skipped;
        return;
    }
    const double err = std::abs(analytic - numeric) / std::max({std::abs(analytic), std::abs(numeric), floor});
    ++res.checked;
    std::ostringstream where;
    where << what << "[" << i << "] analytic " << analytic << " numeric " << numeric;
    if (err > res.max_error || res.worst.empty()) {
        res.max_error = err;
        res.worst = where.str();
    }
    if (!(err <= o.tolerance)) {
        res.ok = false;
        res.failures.push_back(where.str() + " (error " + std::to_string(err) + ")");
    }
}

inline double tensor_floor(const GradientCheckOptions& o, const float* g, std::size_t n) {
    double m = 0.0;
    for (std::size_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(std::abs(g[i])));
    return std::max(o.floor, o.relative_floor * m);
}

inline void finish(GradientCheckResult& res, const GradientCheckOptions& o) {
    const double total = static_cast<double>(res.checked + res.skipped);
    if (total > 0 && static_cast<double>(res.skipped) > o.max_skipped * total) {
        res.ok = false;
        res.failures.push_back("too many values skipped at kinks: " + std::to_string(res.skipped) + " of " +
                               std::to_string(res.checked + res.skipped));
    }
    if (res.checked == 0) {
        res.ok = false;
        res.failures.push_back("nothing was checked");
    }
}

}  // namespace detail

/// Checks `layer`'s backward against central differences at input `x` (see file comment).
/// The layer must already be built. Parameters are restored afterwards.
template <class L, std::size_t N>
GradientCheckResult check_layer_gradients(L& layer, const Tensor<N>& x0, const GradientCheckOptions& o = {}) {
    static_assert(check_layer<L, N>());
    constexpr std::size_t M = output_rank_for<L, N>();
    Rng rng(o.seed);
    Context ctx;
    ctx.training = o.training;
    ctx.trainable = true;
    ctx.seed = o.seed;
    ctx.input_gradient = o.check_input;  // a layer may take another path when none is wanted

    Tensor<N> x = x0;
    Tensor<M> y(layer.output_shape(shape_of(x)));
    layer.forward(x, y, ctx);
    const Tensor<M> r = random_tensor<M>(shape_of(y), rng);
    auto objective = [&]() {
        Tensor<M> yy(layer.output_shape(shape_of(x)));
        layer.forward(x, yy, ctx);
        double s = 0.0;
        for (std::size_t i = 0; i < yy.size(); ++i) s += static_cast<double>(yy.data()[i]) * r.data()[i];
        return s;
    };

    // Analytic gradients: backward with dy = r, after a fresh forward.
    layer.forward(x, y, ctx);
    Tensor<N> dx(shape_of(x));
    dx.fill(0.0f);
    layer.backward(x, y, r, o.check_input ? &dx : nullptr, ctx);
    std::vector<std::vector<float>> grads;
    if constexpr (Trainable<L>)
        layer.visit_parameters([&](ParamRef& p) { grads.emplace_back(p.grad, p.grad + p.size); });

    GradientCheckResult res;
    if (o.check_input) {
        const double floor = detail::tensor_floor(o, dx.data(), dx.size());
        for (std::size_t i : detail::sample_indices(x.size(), o.max_checks, rng)) {
            const auto f = detail::probe(x.data()[i], o.epsilon, [&](float v) { x.data()[i] = v; }, objective);
            detail::record(res, o, "input", i, dx.data()[i], f, floor);
        }
    }
    if constexpr (Trainable<L>) {
        if (o.check_parameters) {
            std::vector<ParamRef> params;
            layer.visit_parameters([&](ParamRef& p) { params.push_back(p); });
            std::vector<bool> chosen(params.size(), o.max_tensors == 0);
            for (std::size_t k : detail::sample_indices(params.size(), o.max_tensors ? o.max_tensors : params.size(), rng))
                chosen[k] = true;
            // A layer may cache values derived from its parameters (folded batch
            // norm): mark each change.
            for (std::size_t k = 0; k < params.size(); ++k) {
                ParamRef& p = params[k];
                if (!p.trainable || !chosen[k]) continue;  // frozen: backward does not compute its gradient
                const double floor = detail::tensor_floor(o, grads[k].data(), grads[k].size());
                for (std::size_t i : detail::sample_indices(p.size, o.max_checks, rng)) {
                    const auto f = detail::probe(p.value[i], o.epsilon, [&](float v) {
                        p.value[i] = v;
                        p.mark_changed();
                    }, objective);
                    detail::record(res, o, p.name, i, grads[k][i], f, floor);
                }
            }
        }
    }
    detail::finish(res, o);
    return res;
}

/// Checks a loss's backward against central differences at (pred, target).
template <Loss L>
GradientCheckResult check_loss_gradients(L& loss, const Tensor<2>& pred0, const Tensor<2>& target,
                                         const GradientCheckOptions& o = {}) {
    Rng rng(o.seed);
    Tensor<2> pred = pred0;
    Tensor<2> g(shape_of(pred));
    loss.backward(pred, target, g);
    GradientCheckResult res;
    const double floor = detail::tensor_floor(o, g.data(), g.size());
    for (std::size_t i : detail::sample_indices(pred.size(), o.max_checks, rng)) {
        const auto f = detail::probe(pred.data()[i], o.epsilon, [&](float v) { pred.data()[i] = v; },
                                     [&] { return static_cast<double>(loss.forward(pred, target)); });
        detail::record(res, o, "pred", i, g.data()[i], f, floor);
    }
    detail::finish(res, o);
    return res;
}

}  // namespace typenet
