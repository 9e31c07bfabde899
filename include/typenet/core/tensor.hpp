/// @file core/tensor.hpp
/// Tensor storage and shapes.
///
/// typenet stores every tensor as an `xt::xtensor<float, N>` whose storage is aligned
/// to `TYPENET_ALIGNMENT` bytes (kernels load whole aligned vectors and write large
/// outputs with non-temporal stores, which need alignment), batch first; images are
/// NHWC (batch, height, width, channels). A `Shape<N>` is a `std::array` of
/// extents; it includes the batch dimension.
///
/// Kernels work on raw pointers (`t.data()`), never on xtensor expressions in loops.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include <xsimd/memory/xsimd_aligned_allocator.hpp>
#include <xtensor/xtensor.hpp>

#include "typenet/config.hpp"
#include "typenet/core/error.hpp"

namespace typenet {

/// Storage of a rank-N float tensor (row-major, batch first, aligned). Any xtensor
/// expression assigns to it: `Tensor<2> t = xt::zeros<float>({2, 3});`.
template <std::size_t N>
using Tensor = xt::xtensor<float, N, xt::layout_type::row_major, xsimd::aligned_allocator<float, TYPENET_ALIGNMENT>>;

/// Extents of a rank-N tensor, batch dimension included.
template <std::size_t N>
using Shape = std::array<std::size_t, N>;

/// Number of elements of a shape.
template <std::size_t N>
constexpr std::size_t shape_size(const Shape<N>& s) noexcept {
    std::size_t n = 1;
    for (auto e : s) n *= e;
    return n;
}

/// "(a, b, c)", as Keras prints shapes. With `batch_none`, the first extent prints as "None".
template <class S>
std::string shape_to_string(const S& s, bool batch_none = false) {
    std::string out = "(";
    std::size_t i = 0;
    for (auto e : s) {
        if (i) out += ", ";
        out += (i == 0 && batch_none) ? std::string("None") : std::to_string(e);
        ++i;
    }
    if (i == 1) out += ",";
    return out + ")";
}

/// The shape of a tensor as a `Shape<N>`.
template <std::size_t N>
Shape<N> shape_of(const Tensor<N>& t) noexcept {
    Shape<N> s{};
    for (std::size_t i = 0; i < N; ++i) s[i] = t.shape()[i];
    return s;
}

/// Give `t` the shape `s`, reallocating only when the shape differs (buffers are
/// allocated once per shape and reused across batches).
template <std::size_t N>
void ensure_shape(Tensor<N>& t, const Shape<N>& s) {
    if (shape_of(t) != s) t.resize(s);
}

/// Throw `shape_error` unless `t` has shape `s`; `what` names the tensor.
template <std::size_t N>
void require_shape(const Tensor<N>& t, const Shape<N>& s, const std::string& what) {
    if (shape_of(t) != s)
        throw shape_error(what + ": expected shape " + shape_to_string(s) + ", got " +
                          shape_to_string(shape_of(t)));
}

/// A tensor filled with zeros.
template <std::size_t N>
Tensor<N> zeros(const Shape<N>& s) {
    Tensor<N> t(s);
    t.fill(0.0f);
    return t;
}

}  // namespace typenet
