/// @file train/progress.hpp
/// `ProgressBar`: Keras-style progress of `fit`, one bar per epoch.
///
///     Epoch 1/5
///     30/30 [==============================] - 2s 61ms/step - loss: 0.2710 - accuracy: 0.9178 - val_loss: 0.0712 - val_accuracy: 0.9850
///
/// On a terminal the bar is redrawn in place (at most ten times a second) with the
/// estimated time left; when the output is a file or a pipe, each epoch prints plain
/// lines: its figures when it ends, plus a progress line every `plain_interval` seconds
/// during long epochs.
#pragma once

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

#include <unistd.h>

#include "typenet/train/logs.hpp"

namespace typenet {

/// What `fit` tells callbacks about the run (`model.params()`).
struct FitParams {
    std::size_t epochs = 0;  ///< epochs of this fit call
    std::size_t steps = 0;   ///< training batches per epoch
    int verbose = 1;
    bool cached_features = false;  ///< the frozen-feature cache is in use
};

namespace detail {
inline std::string format_duration(double s) {
    char buf[32];
    if (s < 1.0) std::snprintf(buf, sizeof buf, "%.0fms", s * 1000);
    else if (s < 60) std::snprintf(buf, sizeof buf, "%.0fs", s);
    else if (s < 3600) std::snprintf(buf, sizeof buf, "%d:%02d", int(s) / 60, int(s) % 60);
    else std::snprintf(buf, sizeof buf, "%d:%02d:%02d", int(s) / 3600, (int(s) / 60) % 60, int(s) % 60);
    return buf;
}
inline std::string format_logs(const Logs& logs) {
    std::string s;
    char buf[64];
    for (const auto& [k, v] : logs) {
        std::snprintf(buf, sizeof buf, " - %s: %.4f", k.c_str(), v);
        s += buf;
    }
    return s;
}
}  // namespace detail

/// Keras-style progress bar (see the file comment).
class ProgressBar {
public:
    /// `out` defaults to standard output; `terminal` is detected when not given.
    explicit ProgressBar(std::ostream& out = std::cout, int terminal = -1, double plain_interval = 30.0)
        : out_(out), plain_interval_(plain_interval) {
        terminal_ = terminal >= 0 ? terminal != 0 : (&out == &std::cout && ::isatty(STDOUT_FILENO));
    }

    template <class M>
    void on_epoch_begin(std::size_t epoch, Logs&, M& model) {
        params_ = model.params();
        out_ << "Epoch " << epoch + 1 << "/" << params_.epochs << "\n" << std::flush;
        start_ = last_draw_ = clock::now();
        last_plain_ = start_;
    }
    template <class M>
    void on_train_batch_end(std::size_t batch, Logs& logs, M&) {
        const auto now = clock::now();
        const std::size_t done = batch + 1;
        if (terminal_) {
            if (done < params_.steps && seconds(now - last_draw_) < 0.1) return;
            last_draw_ = now;
            out_ << "\r" << line(done, logs, now, false) << "\033[K" << std::flush;
        } else if (seconds(now - last_plain_) >= plain_interval_ && done < params_.steps) {
            last_plain_ = now;
            out_ << line(done, logs, now, false) << "\n" << std::flush;
        }
    }
    template <class M>
    void on_epoch_end(std::size_t, Logs& logs, M&) {
        const auto now = clock::now();
        if (terminal_) out_ << "\r";
        out_ << line(params_.steps, logs, now, true) << (terminal_ ? "\033[K\n" : "\n") << std::flush;
    }

private:
    using clock = std::chrono::steady_clock;
    static double seconds(clock::duration d) { return std::chrono::duration<double>(d).count(); }

    std::string line(std::size_t done, const Logs& logs, clock::time_point now, bool final) const {
        const std::size_t total = params_.steps ? params_.steps : 1;
        const std::size_t width = 30;
        const std::size_t filled = std::min(width, done * width / total);
        std::string bar(filled, '=');
        if (filled < width) {
            bar += '>';
            bar += std::string(width - filled - 1, '.');
        }
        const double elapsed = seconds(now - start_);
        std::ostringstream os;
        const std::string steps = std::to_string(total);
        std::string d = std::to_string(done);
        os << std::string(steps.size() > d.size() ? steps.size() - d.size() : 0, ' ') << d << "/" << steps << " ["
           << bar << "] - ";
        if (final) {
            os << detail::format_duration(elapsed) << " " << detail::format_duration(elapsed / double(done ? done : 1))
               << "/step";
        } else {
            const double eta = done ? elapsed / double(done) * double(total - done) : 0.0;
            os << "ETA: " << detail::format_duration(eta);
        }
        os << detail::format_logs(logs);
        return os.str();
    }

    std::ostream& out_;
    bool terminal_ = false;
    double plain_interval_;
    FitParams params_;
    clock::time_point start_, last_draw_, last_plain_;
};

}  // namespace typenet
