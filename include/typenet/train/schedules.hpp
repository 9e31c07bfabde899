/// @file train/schedules.hpp
/// Learning-rate schedules as types, and the callback that applies one.
///
/// A schedule is any type with `float operator()(std::uint64_t step) const` giving the
/// learning rate of training step `step` (0-based, counted over the whole `fit`):
///
/// ```cpp
/// CosineDecay schedule{.initial = 1e-4f, .decay_steps = 300, .warmup_steps = 30};
/// LearningRateScheduler lrs(schedule);
/// model.fit(train, {.epochs = 10}, lrs);
/// ```
#pragma once

#include <cmath>
#include <concepts>
#include <cstdint>
#include <numbers>

#include "typenet/core/error.hpp"
#include "typenet/train/logs.hpp"

namespace typenet {

/// A learning-rate schedule (see the file comment).
template <class S>
concept Schedule = requires(const S& s, std::uint64_t step) {
    { s(step) } -> std::convertible_to<float>;
};

/// The same rate at every step.
struct ConstantLR {
    float rate = 1e-3f;
    float operator()(std::uint64_t) const { return rate; }
};

/// `initial * factor^floor(step / every)` (step decay).
struct StepDecay {
    float initial = 1e-3f;
    float factor = 0.1f;
    std::uint64_t every = 1000;
    float operator()(std::uint64_t step) const {
        if (every == 0) throw config_error("StepDecay: every must be > 0");
        return initial * std::pow(factor, static_cast<float>(step / every));
    }
};

/// `initial * rate^(step / decay_steps)`, continuous or (staircase) in whole periods, as Keras's ExponentialDecay.
struct ExponentialDecay {
    float initial = 1e-3f;
    float rate = 0.96f;
    std::uint64_t decay_steps = 1000;
    bool staircase = false;
    float operator()(std::uint64_t step) const {
        if (decay_steps == 0) throw config_error("ExponentialDecay: decay_steps must be > 0");
        double p = static_cast<double>(step) / static_cast<double>(decay_steps);
        if (staircase) p = std::floor(p);
        return static_cast<float>(initial * std::pow(static_cast<double>(rate), p));
    }
};

/// Keras's CosineDecay with optional linear warmup: for `warmup_steps` steps the rate
/// rises linearly from `initial` to `warmup_target` (when warmup_target > 0, else it
/// rises from 0 to `initial`), then follows `alpha + (1 - alpha) * (1 + cos(pi * t)) / 2`
/// times the peak over `decay_steps` steps (t from 0 to 1), and stays at `alpha` x peak.
struct CosineDecay {
    float initial = 1e-3f;
    std::uint64_t decay_steps = 1000;
    float alpha = 0.0f;
    std::uint64_t warmup_steps = 0;
    float warmup_target = 0.0f;
    float operator()(std::uint64_t step) const {
        const bool target = warmup_target > 0.0f;
        const float peak = target ? warmup_target : initial;
        if (step < warmup_steps) {
            const float from = target ? initial : 0.0f;
            return from + (peak - from) * static_cast<float>(step + 1) / static_cast<float>(warmup_steps);
        }
        if (decay_steps == 0) return peak;
        const double t = std::min(1.0, static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps));
        const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * t));
        return static_cast<float>(peak * ((1.0 - alpha) * cosine + alpha));
    }
};

/// Callback applying a schedule: before each training batch, sets the optimizer's
/// learning rate to `schedule(step)` and records it in the batch logs as "lr".
template <Schedule S>
class LearningRateScheduler {
public:
    explicit LearningRateScheduler(S schedule) : schedule_(std::move(schedule)) {}
    template <class M>
    void on_train_batch_begin(std::size_t, Logs& logs, M& model) {
        const float lr = schedule_(step_++);
        model.optimizer().set_learning_rate(lr);
        logs.set("lr", lr);
    }
    template <class M>
    void on_epoch_end(std::size_t, Logs& logs, M& model) {
        logs.set("lr", model.optimizer().learning_rate());
    }
    std::uint64_t step() const noexcept { return step_; }

private:
    S schedule_;
    std::uint64_t step_ = 0;
};

}  // namespace typenet
