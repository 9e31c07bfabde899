/// @file metrics/categorical_accuracy.hpp
/// `CategoricalAccuracy`: share of examples whose highest output is the true class.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "typenet/core/tensor.hpp"
#include "typenet/metrics/metric.hpp"

namespace typenet {

/// Accuracy of argmax(pred) against the target class: the argmax of a one-hot
/// target row, or the index itself when targets are (batch, 1) class indices.
/// Ties in pred go to the lowest index (as numpy's argmax).
class CategoricalAccuracy {
public:
    std::string name() const { return "accuracy"; }

    void update(const Tensor<2>& pred, const Tensor<2>& target) {
        const std::size_t n = pred.shape()[0], k = pred.shape()[1];
        const bool sparse = target.shape()[1] == 1 && k > 1;
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t p = argmax(pred.data() + i * k, k);
            const std::size_t t = sparse ? static_cast<std::size_t>(target(i, 0)) : argmax(target.data() + i * k, k);
            correct_ += p == t;
        }
        total_ += n;
    }
    float result() const { return total_ ? static_cast<float>(static_cast<double>(correct_) / total_) : 0.0f; }
    void reset() { correct_ = total_ = 0; }
    std::size_t correct() const noexcept { return correct_; }
    /// The running state {correct, total}: states of several processes add up.
    std::vector<double> state() const { return {static_cast<double>(correct_), static_cast<double>(total_)}; }
    void set_state(const std::vector<double>& s) {
        correct_ = static_cast<std::size_t>(s.at(0));
        total_ = static_cast<std::size_t>(s.at(1));
    }
    std::size_t count() const noexcept { return total_; }

    /// Index of the largest of `n` values (lowest index on ties).
    static std::size_t argmax(const float* v, std::size_t n) {
        std::size_t best = 0;
        for (std::size_t c = 1; c < n; ++c)
            if (v[c] > v[best]) best = c;
        return best;
    }

private:
    std::size_t correct_ = 0, total_ = 0;
};

}  // namespace typenet
