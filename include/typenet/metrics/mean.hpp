/// @file metrics/mean.hpp
/// `Mean`: running (weighted) mean of a value, e.g. the loss over an epoch.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace typenet {

/// Running mean: `add(value, weight)` then `result()`. The loss of a batch is added
/// with the batch size as weight, so the epoch figure is the per-example mean.
class Mean {
public:
    explicit Mean(std::string name = "loss") : name_(std::move(name)) {}
    void add(double value, double weight = 1.0) {
        sum_ += value * weight;
        weight_ += weight;
    }
    float result() const { return weight_ > 0 ? static_cast<float>(sum_ / weight_) : 0.0f; }
    void reset() { sum_ = weight_ = 0.0; }
    const std::string& name() const noexcept { return name_; }
    double count() const noexcept { return weight_; }
    /// The running state {sum, weight}: states of several processes add up.
    std::vector<double> state() const { return {sum_, weight_}; }
    void set_state(const std::vector<double>& s) {
        sum_ = s.at(0);
        weight_ = s.at(1);
    }

private:
    std::string name_;
    double sum_ = 0.0, weight_ = 0.0;
};

}  // namespace typenet
