/// @file optimizers/adam.hpp
/// `Adam` and `AdamW` with Keras's defaults and formulas.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "typenet/kernels/simd.hpp"
#include "typenet/optimizers/optimizer.hpp"

namespace typenet {

namespace detail {
struct MomentState {
    std::size_t size = 0;
    std::vector<float> m, v;
};
}  // namespace detail

/// Adam (Kingma & Ba) as Keras computes it, defaults lr 1e-3, beta_1 0.9,
/// beta_2 0.999, epsilon 1e-7. At step t:
///   m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2,
///   w -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon).
/// (PyTorch adds epsilon after the bias correction instead; the two differ only in
/// how epsilon is scaled.) With `weight_decay` > 0 this is AdamW: before the update,
/// w -= lr * weight_decay * w (decoupled from the gradient, Loshchilov & Hutter).
class Adam : public OptimizerBase<Adam, detail::MomentState> {
public:
    explicit Adam(float learning_rate = 1e-3f, float beta_1 = 0.9f, float beta_2 = 0.999f, float epsilon = 1e-7f,
                  float weight_decay = 0.0f)
        : OptimizerBase(learning_rate), b1_(beta_1), b2_(beta_2), eps_(epsilon), wd_(weight_decay) {
        if (!(beta_1 >= 0.0f && beta_1 < 1.0f && beta_2 >= 0.0f && beta_2 < 1.0f))
            throw config_error("Adam: beta_1 and beta_2 must be in [0, 1)");
        if (!(epsilon > 0.0f)) throw config_error("Adam: epsilon must be > 0");
        if (!(weight_decay >= 0.0f)) throw config_error("Adam: weight decay must be >= 0");
    }
    float beta_1() const noexcept { return b1_; }
    float beta_2() const noexcept { return b2_; }
    float epsilon() const noexcept { return eps_; }
    float weight_decay() const noexcept { return wd_; }

    void init_state(detail::MomentState& s, std::size_t n) {
        s.size = n;
        s.m.assign(n, 0.0f);
        s.v.assign(n, 0.0f);
    }
    void update(detail::MomentState& s, float* w, const float* g, std::size_t n, float lr, float gscale) {
        const double t = static_cast<double>(iterations_);
        const float lr_t =
            static_cast<float>(lr * std::sqrt(1.0 - std::pow(static_cast<double>(b2_), t)) /
                               (1.0 - std::pow(static_cast<double>(b1_), t)));
        const float b1 = b1_, b2 = b2_, eps = eps_, decay = lr * wd_;
        float* m = s.m.data();
        float* v = s.v.data();
        // One formula for the vectors and the scalar tail (T: float or kernels::vfloat).
        auto step = [=](auto wi, auto gi, auto mi, auto vi, auto& wo, auto& mo, auto& vo) {
            using T = decltype(wi);
            gi = gi * T(gscale);
            if (decay != 0.0f) wi = wi - T(decay) * wi;
            mo = T(b1) * mi + T(1.0f - b1) * gi;
            vo = T(b2) * vi + T(1.0f - b2) * gi * gi;
            wo = wi - T(lr_t) * mo / (xsimd::sqrt(vo) + T(eps));
        };
        detail::update_ranges(n, [&](std::size_t i0, std::size_t i1) {
            // Vectorised by hand: the compiler leaves this loop scalar (its four arrays may
            // alias), and its square roots and divisions then cost more than its memory traffic.
            constexpr std::size_t W = kernels::simd_width;
            using V = kernels::vfloat;
            std::size_t i = i0;
            for (; i + W <= i1; i += W) {
                V wo, mo, vo;
                step(V::load_unaligned(w + i), V::load_unaligned(g + i), V::load_unaligned(m + i),
                     V::load_unaligned(v + i), wo, mo, vo);
                wo.store_unaligned(w + i);
                mo.store_unaligned(m + i);
                vo.store_unaligned(v + i);
            }
            for (; i < i1; ++i) step(w[i], g[i], m[i], v[i], w[i], m[i], v[i]);
        });
    }

private:
    float b1_, b2_, eps_, wd_;
};

/// AdamW: Adam with decoupled weight decay (Keras's default decay 0.004).
class AdamW : public Adam {
public:
    explicit AdamW(float learning_rate = 1e-3f, float weight_decay = 0.004f, float beta_1 = 0.9f,
                   float beta_2 = 0.999f, float epsilon = 1e-7f)
        : Adam(learning_rate, beta_1, beta_2, epsilon, weight_decay) {}
};

}  // namespace typenet
