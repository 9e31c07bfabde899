/// @file train/logs.hpp
/// `Logs`: the named figures training reports to callbacks ("loss", "accuracy",
/// "val_loss", ...), in the order they were first set.
#pragma once

#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace typenet {

/// An ordered map from figure name to value, like the `logs` dict of Keras callbacks.
class Logs {
public:
    /// Set (or add) `name`.
    void set(const std::string& name, double value) {
        for (auto& [k, v] : items_)
            if (k == name) {
                v = value;
                return;
            }
        items_.emplace_back(name, value);
    }
    /// The value of `name`, if present.
    std::optional<double> get(const std::string& name) const {
        for (const auto& [k, v] : items_)
            if (k == name) return v;
        return std::nullopt;
    }
    /// The value of `name`, or NaN.
    double operator[](const std::string& name) const { return get(name).value_or(std::nan("")); }
    bool contains(const std::string& name) const { return get(name).has_value(); }
    void clear() { items_.clear(); }
    const std::vector<std::pair<std::string, double>>& items() const noexcept { return items_; }
    auto begin() const noexcept { return items_.begin(); }
    auto end() const noexcept { return items_.end(); }

private:
    std::vector<std::pair<std::string, double>> items_;
};

}  // namespace typenet
