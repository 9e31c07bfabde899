/// @file kernels/epilogue.hpp
/// What a kernel does to each output value before writing it: add a bias and a
/// residual, clamp (ReLU, ReLU6), accumulate into the existing output.
///
/// The epilogue is applied in the kernels' store, so an activation is written once
/// and never re-read: for each output value,
///
///     v = acc (+ y_old if accumulate) (+ bias[col]) (+ residual[row * ldr + col])
///     y = min(max(v, lo), hi)
///
/// ReLU is `{lo = 0, hi = inf}`, ReLU6 `{lo = 0, hi = 6}`. NaN propagates through
/// the clamp.
#pragma once

#include <cmath>
#include <cstddef>

namespace typenet::kernels {

/// Output transformation fused into a kernel's store (see the file comment).
struct Epilogue {
    /// Per output column (gemm) or channel (convolutions), added; nullptr for none.
    const float* bias = nullptr;
    /// Same shape as the output with leading dimension `ldr`, added; nullptr for none.
    const float* residual = nullptr;
    /// Leading dimension of `residual` (0 means: the output's own leading dimension).
    std::size_t ldr = 0;
    /// Lower clamp bound (`-INFINITY` for none).
    float lo = -INFINITY;
    /// Upper clamp bound (`INFINITY` for none).
    float hi = INFINITY;
    /// Add the result to the existing output instead of overwriting it.
    bool accumulate = false;

    /// True when the clamp does something.
    bool clamps() const noexcept { return lo != -INFINITY || hi != INFINITY; }
    /// True when the epilogue is the identity (plain store).
    bool trivial() const noexcept { return !bias && !residual && !clamps() && !accumulate; }
};

/// An epilogue adding `bias` and clamping to [lo, hi].
inline Epilogue bias_clamp(const float* bias, float lo = -INFINITY, float hi = INFINITY) noexcept {
    Epilogue e;
    e.bias = bias;
    e.lo = lo;
    e.hi = hi;
    return e;
}

/// The epilogue for ReLU6 after a bias.
inline Epilogue bias_relu6(const float* bias) noexcept { return bias_clamp(bias, 0.0f, 6.0f); }

}  // namespace typenet::kernels
