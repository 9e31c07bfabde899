// Naive reference implementations for the kernel tests: plain loops, double
// accumulation, written independently of the optimised kernels (no shared code
// beyond ConvGeometry's fields).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "typenet/core/random.hpp"
#include "typenet/kernels/conv_geometry.hpp"
#include "typenet/kernels/epilogue.hpp"

namespace naive {

using typenet::kernels::ConvGeometry;
using typenet::kernels::Epilogue;

/// Random floats in [-1, 1).
inline std::vector<float> random(std::size_t n, std::uint64_t seed) {
    typenet::Rng rng(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = rng.uniform(-1.0f, 1.0f);
    return v;
}

/// Values a ReLU6 layer outputs: every 7th exactly 0, every 7th (next) exactly 6, the rest
/// in [-3, 7) (beyond both bounds too: an input map or a residual can put them there).
inline std::vector<float> relu6_outputs(std::size_t n, std::uint64_t seed) {
    std::vector<float> v = random(n, seed);
    for (std::size_t i = 0; i < n; ++i) v[i] = i % 7 == 0 ? 0.0f : i % 7 == 1 ? 6.0f : 2.0f + 5.0f * v[i];
    return v;
}

/// ReLU6's backward mask applied to a gradient: `g[i] = 0` unless `0 < y[i] < 6`. Returns
/// how many values were zeroed.
inline std::size_t relu6_mask(const std::vector<float>& y, std::vector<float>& g) {
    std::size_t masked = 0;
    for (std::size_t i = 0; i < y.size(); ++i)
        if (!(y[i] > 0.0f && y[i] < 6.0f)) {
            g[i] = 0.0f;
            ++masked;
        }
    return masked;
}

/// Apply an epilogue to a double accumulator (reference semantics).
inline double finish(double v, double old, std::size_t row, std::size_t col, std::size_t ldc, const Epilogue& ep) {
    if (ep.accumulate) v += old;
    if (ep.bias) v += ep.bias[col];
    if (ep.residual) v += ep.residual[row * (ep.ldr ? ep.ldr : ldc) + col];
    if (v < ep.lo) v = ep.lo;
    if (v > ep.hi) v = ep.hi;
    return v;
}

/// C = epilogue(op(A) op(B)).
inline void gemm(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, const float* A, std::size_t lda,
                 const float* B, std::size_t ldb, float* C, std::size_t ldc, const Epilogue& ep = {}) {
    for (std::size_t i = 0; i < M; ++i)
        for (std::size_t j = 0; j < N; ++j) {
            double s = 0;
            for (std::size_t k = 0; k < K; ++k) {
                const double a = ta ? A[k * lda + i] : A[i * lda + k];
                const double b = tb ? B[j * ldb + k] : B[k * ldb + j];
                s += a * b;
            }
            C[i * ldc + j] = float(finish(s, C[i * ldc + j], i, j, ldc, ep));
        }
}

/// Input row / column of output (o) tap (t), or -1 when in the padding.
inline long in_index(std::size_t o, std::size_t t, std::size_t stride, std::size_t pad, std::size_t extent) {
    const long v = long(o * stride + t) - long(pad);
    return (v < 0 || v >= long(extent)) ? -1 : v;
}

/// Depthwise forward, weights [kh][kw][c].
inline void depthwise_forward(const ConvGeometry& g, const float* x, const float* w, float* y, const Epilogue& ep = {}) {
    const std::size_t C = g.c;
    for (std::size_t n = 0; n < g.n; ++n)
        for (std::size_t oy = 0; oy < g.oh; ++oy)
            for (std::size_t ox = 0; ox < g.ow; ++ox)
                for (std::size_t c = 0; c < C; ++c) {
                    double s = 0;
                    for (std::size_t i = 0; i < g.kh; ++i)
                        for (std::size_t j = 0; j < g.kw; ++j) {
                            const long iy = in_index(oy, i, g.sh, g.pad_top, g.h);
                            const long ix = in_index(ox, j, g.sw, g.pad_left, g.w);
                            if (iy < 0 || ix < 0) continue;
                            s += double(x[((n * g.h + iy) * g.w + ix) * C + c]) * w[(i * g.kw + j) * C + c];
                        }
                    const std::size_t p = (n * g.oh + oy) * g.ow + ox;
                    y[p * C + c] = float(finish(s, y[p * C + c], p, c, C, ep));
                }
}

/// Depthwise input gradient (scatter form).
inline void depthwise_backward_input(const ConvGeometry& g, const float* dy, const float* w, float* dx) {
    const std::size_t C = g.c;
    std::vector<double> acc(g.n * g.h * g.w * C, 0.0);
    for (std::size_t n = 0; n < g.n; ++n)
        for (std::size_t oy = 0; oy < g.oh; ++oy)
            for (std::size_t ox = 0; ox < g.ow; ++ox)
                for (std::size_t i = 0; i < g.kh; ++i)
                    for (std::size_t j = 0; j < g.kw; ++j) {
                        const long iy = in_index(oy, i, g.sh, g.pad_top, g.h);
                        const long ix = in_index(ox, j, g.sw, g.pad_left, g.w);
                        if (iy < 0 || ix < 0) continue;
                        for (std::size_t c = 0; c < C; ++c)
                            acc[((n * g.h + iy) * g.w + ix) * C + c] +=
                                double(dy[((n * g.oh + oy) * g.ow + ox) * C + c]) * w[(i * g.kw + j) * C + c];
                    }
    for (std::size_t k = 0; k < acc.size(); ++k) dx[k] = float(acc[k]);
}

/// Depthwise weight gradient.
inline void depthwise_backward_weight(const ConvGeometry& g, const float* x, const float* dy, float* dw) {
    const std::size_t C = g.c;
    std::vector<double> acc(g.kh * g.kw * C, 0.0);
    for (std::size_t n = 0; n < g.n; ++n)
        for (std::size_t oy = 0; oy < g.oh; ++oy)
            for (std::size_t ox = 0; ox < g.ow; ++ox)
                for (std::size_t i = 0; i < g.kh; ++i)
                    for (std::size_t j = 0; j < g.kw; ++j) {
                        const long iy = in_index(oy, i, g.sh, g.pad_top, g.h);
                        const long ix = in_index(ox, j, g.sw, g.pad_left, g.w);
                        if (iy < 0 || ix < 0) continue;
                        for (std::size_t c = 0; c < C; ++c)
                            acc[(i * g.kw + j) * C + c] += double(x[((n * g.h + iy) * g.w + ix) * C + c]) *
                                                           dy[((n * g.oh + oy) * g.ow + ox) * C + c];
                    }
    for (std::size_t k = 0; k < acc.size(); ++k) dw[k] = float(acc[k]);
}

/// Full convolution forward, weights HWIO [kh][kw][c][cout].
inline void conv2d_forward(const ConvGeometry& g, std::size_t cout, const float* x, const float* w, float* y,
                           const Epilogue& ep = {}) {
    for (std::size_t n = 0; n < g.n; ++n)
        for (std::size_t oy = 0; oy < g.oh; ++oy)
            for (std::size_t ox = 0; ox < g.ow; ++ox)
                for (std::size_t o = 0; o < cout; ++o) {
                    double s = 0;
                    for (std::size_t i = 0; i < g.kh; ++i)
                        for (std::size_t j = 0; j < g.kw; ++j) {
                            const long iy = in_index(oy, i, g.sh, g.pad_top, g.h);
                            const long ix = in_index(ox, j, g.sw, g.pad_left, g.w);
                            if (iy < 0 || ix < 0) continue;
                            for (std::size_t c = 0; c < g.c; ++c)
                                s += double(x[((n * g.h + iy) * g.w + ix) * g.c + c]) *
                                     w[((i * g.kw + j) * g.c + c) * cout + o];
                        }
                    const std::size_t p = (n * g.oh + oy) * g.ow + ox;
                    y[p * cout + o] = float(finish(s, y[p * cout + o], p, o, cout, ep));
                }
}

/// Full convolution input gradient.
inline void conv2d_backward_input(const ConvGeometry& g, std::size_t cout, const float* dy, const float* w, float* dx) {
    std::vector<double> acc(g.n * g.h * g.w * g.c, 0.0);
    for (std::size_t n = 0; n < g.n; ++n)
        for (std::size_t oy = 0; oy < g.oh; ++oy)
            for (std::size_t ox = 0; ox < g.ow; ++ox)
                for (std::size_t i = 0; i < g.kh; ++i)
                    for (std::size_t j = 0; j < g.kw; ++j) {
                        const long iy = in_index(oy, i, g.sh, g.pad_top, g.h);
                        const long ix = in_index(ox, j, g.sw, g.pad_left, g.w);
                        if (iy < 0 || ix < 0) continue;
                        for (std::size_t c = 0; c < g.c; ++c) {
                            double s = 0;
                            for (std::size_t o = 0; o < cout; ++o)
                                s += double(dy[((n * g.oh + oy) * g.ow + ox) * cout + o]) *
                                     w[((i * g.kw + j) * g.c + c) * cout + o];
                            acc[((n * g.h + iy) * g.w + ix) * g.c + c] += s;
                        }
                    }
    for (std::size_t k = 0; k < acc.size(); ++k) dx[k] = float(acc[k]);
}

/// Full convolution weight gradient (HWIO).
inline void conv2d_backward_weight(const ConvGeometry& g, std::size_t cout, const float* x, const float* dy, float* dw) {
    std::vector<double> acc(g.kh * g.kw * g.c * cout, 0.0);
    for (std::size_t n = 0; n < g.n; ++n)
        for (std::size_t oy = 0; oy < g.oh; ++oy)
            for (std::size_t ox = 0; ox < g.ow; ++ox)
                for (std::size_t i = 0; i < g.kh; ++i)
                    for (std::size_t j = 0; j < g.kw; ++j) {
                        const long iy = in_index(oy, i, g.sh, g.pad_top, g.h);
                        const long ix = in_index(ox, j, g.sw, g.pad_left, g.w);
                        if (iy < 0 || ix < 0) continue;
                        for (std::size_t c = 0; c < g.c; ++c) {
                            const double xv = x[((n * g.h + iy) * g.w + ix) * g.c + c];
                            for (std::size_t o = 0; o < cout; ++o)
                                acc[((i * g.kw + j) * g.c + c) * cout + o] +=
                                    xv * dy[((n * g.oh + oy) * g.ow + ox) * cout + o];
                        }
                    }
    for (std::size_t k = 0; k < acc.size(); ++k) dw[k] = float(acc[k]);
}

/// Largest |a - b| / (|b| + 1) over two arrays: relative error, absolute near zero.
inline double max_rel_error(const float* a, const float* b, std::size_t n) {
    double m = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double d = std::abs(double(a[i]) - double(b[i])) / (std::abs(double(b[i])) + 1.0);
        if (!(d <= m)) m = d;  // NaN counts as infinitely wrong
    }
    return m;
}

/// Largest |a - b| / (|b| + s) with s = max(1, RMS of b): relative error, measured
/// against the output's typical magnitude near zero (for outputs that are long sums of
/// large terms, where an absolute floor of 1 would be meaningless).
inline double max_scaled_error(const float* a, const float* b, std::size_t n) {
    double q = 0;
    for (std::size_t i = 0; i < n; ++i) q += double(b[i]) * double(b[i]);
    const double s = std::max(1.0, std::sqrt(q / double(n ? n : 1)));
    double m = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double d = std::abs(double(a[i]) - double(b[i])) / (std::abs(double(b[i])) + s);
        if (!(d <= m)) m = d;
    }
    return m;
}

}  // namespace naive
