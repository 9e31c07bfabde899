// Small helpers shared by the tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "typenet/core/tensor.hpp"

namespace typenet::test {

/// Largest |a - b| over two tensors of the same size.
template <class A, class B>
double max_abs_diff(const A& a, const B& b) {
    double m = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i)
        m = std::max(m, std::abs(static_cast<double>(a.data()[i]) - static_cast<double>(b.data()[i])));
    return m;
}

/// Largest |a| over a tensor.
template <class A>
double max_abs(const A& a) {
    double m = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(static_cast<double>(a.data()[i])));
    return m;
}

/// One-hot rows for labels.
inline Tensor<2> one_hot(const std::vector<int>& labels, std::size_t classes) {
    Tensor<2> t = zeros<2>({labels.size(), classes});
    for (std::size_t i = 0; i < labels.size(); ++i) t(i, static_cast<std::size_t>(labels[i])) = 1.0f;
    return t;
}

}  // namespace typenet::test
