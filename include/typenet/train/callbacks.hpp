/// @file train/callbacks.hpp
/// Callbacks: objects `fit` calls at points of training, detected by the methods they
/// have (ensmallen's and Keras's idea). A callback is any class with one or more of
///
///     void on_train_begin(Logs&)                       void on_train_end(Logs&)
///     void on_epoch_begin(std::size_t epoch, Logs&)    void on_epoch_end(std::size_t epoch, Logs&)
///     void on_train_batch_begin(std::size_t batch, Logs&)
///     void on_train_batch_end(std::size_t batch, Logs&)
///     void on_test_batch_end(std::size_t batch, Logs&)
///
/// each optionally taking the model as a last argument (`Model<...>&`, or `auto&`), to
/// read `params()`, call `reset_metrics()`, set `stop_training`, or save it. A type
/// with none of them is refused at compile time (a misspelt method would otherwise be
/// silently ignored). Epochs and batches count from 0.
///
/// Built in: `History`, `ProgressBar` (added by `fit` unless verbose is 0),
/// `CSVLogger`, `EarlyStopping`, `ModelCheckpoint`.
#pragma once

#include <cmath>
#include <cstddef>
#include <filesystem>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/core/parameter.hpp"
#include "typenet/io/file.hpp"
#include "typenet/io/model_file.hpp"
#include "typenet/train/logs.hpp"

namespace typenet {

namespace detail {
#define TYPENET_CALLBACK_HOOK(hook)                                                              \
    template <class C, class M, class... A>                                                      \
    void call_##hook(C& c, M& m, A&... a) {                                                      \
        if constexpr (requires { c.hook(a..., m); }) c.hook(a..., m);                            \
        else if constexpr (requires { c.hook(a...); }) c.hook(a...);                             \
    }                                                                                            \
    template <class C>                                                                           \
    inline constexpr bool has_##hook = requires(C& c, std::size_t i, Logs& l) { c.hook(l); } ||  \
                                       requires(C& c, std::size_t i, Logs& l) { c.hook(i, l); }; \
    template <class C, class M>                                                                  \
    inline constexpr bool has_##hook##_m = requires(C& c, std::size_t i, Logs& l, M& m) { c.hook(l, m); } || \
                                           requires(C& c, std::size_t i, Logs& l, M& m) { c.hook(i, l, m); };

TYPENET_CALLBACK_HOOK(on_train_begin)
TYPENET_CALLBACK_HOOK(on_train_end)
TYPENET_CALLBACK_HOOK(on_epoch_begin)
TYPENET_CALLBACK_HOOK(on_epoch_end)
TYPENET_CALLBACK_HOOK(on_train_batch_begin)
TYPENET_CALLBACK_HOOK(on_train_batch_end)
TYPENET_CALLBACK_HOOK(on_test_batch_end)
#undef TYPENET_CALLBACK_HOOK
}  // namespace detail

/// `C` has at least one callback method (for a model of type `M`).
template <class C, class M>
concept Callback =
    detail::has_on_train_begin<C> || detail::has_on_train_end<C> || detail::has_on_epoch_begin<C> ||
    detail::has_on_epoch_end<C> || detail::has_on_train_batch_begin<C> || detail::has_on_train_batch_end<C> ||
    detail::has_on_test_batch_end<C> || detail::has_on_train_begin_m<C, M> || detail::has_on_train_end_m<C, M> ||
    detail::has_on_epoch_begin_m<C, M> || detail::has_on_epoch_end_m<C, M> ||
    detail::has_on_train_batch_begin_m<C, M> || detail::has_on_train_batch_end_m<C, M> ||
    detail::has_on_test_batch_end_m<C, M>;

/// Records the logs of every epoch (what `fit` returns).
class History {
public:
    void on_train_begin(Logs&) { epochs_.clear(); }
    void on_epoch_end(std::size_t, Logs& logs) { epochs_.push_back(logs); }

    /// Logs of each epoch.
    const std::vector<Logs>& epochs() const noexcept { return epochs_; }
    /// The values of `name` over the epochs (NaN where absent), like Keras's history["loss"].
    std::vector<double> operator[](const std::string& name) const {
        std::vector<double> v;
        for (const Logs& l : epochs_) v.push_back(l[name]);
        return v;
    }

private:
    std::vector<Logs> epochs_;
};

/// Writes one CSV row per epoch (epoch, then every figure) to `path`, rewriting the file
/// atomically after each epoch, so it is complete even if training stops half-way.
class CSVLogger {
public:
    explicit CSVLogger(std::filesystem::path path) : path_(std::move(path)) {}
    void on_train_begin(Logs&) { rows_.clear(); }
    void on_epoch_end(std::size_t epoch, Logs& logs) {
        if (columns_.empty())
            for (const auto& [k, v] : logs) columns_.push_back(k);
        std::ostringstream row;
        row.precision(8);
        row << epoch;
        for (const auto& c : columns_) {
            const double v = logs[c];
            row << ',';
            if (!std::isnan(v)) row << v;
        }
        rows_.push_back(row.str());
        std::string text = "epoch";
        for (const auto& c : columns_) text += "," + c;
        text += "\n";
        for (const auto& r : rows_) text += r + "\n";
        io::write_file_atomic(path_, std::span<const std::byte>(reinterpret_cast<const std::byte*>(text.data()), text.size()));
    }

private:
    std::filesystem::path path_;
    std::vector<std::string> columns_, rows_;
};

namespace detail {
/// Is `now` better than `best` for `monitor` (min for losses, max for the rest)?
inline bool improved(const std::string& monitor, double now, double best, double min_delta) {
    const bool maximise = monitor.find("acc") != std::string::npos;
    return maximise ? now > best + min_delta : now < best - min_delta;
}
inline double worst_value(const std::string& monitor) {
    return monitor.find("acc") != std::string::npos ? -std::numeric_limits<double>::infinity()
                                                    : std::numeric_limits<double>::infinity();
}
}  // namespace detail

/// Stops training when `monitor` (default "val_loss"; figures containing "acc" are
/// maximised, others minimised) has not improved by `min_delta` for `patience` epochs;
/// with `restore_best_weights`, puts back the weights of the best epoch.
class EarlyStopping {
public:
    explicit EarlyStopping(std::string monitor = "val_loss", std::size_t patience = 0, double min_delta = 0.0,
                           bool restore_best_weights = false)
        : monitor_(std::move(monitor)), patience_(patience), min_delta_(min_delta), restore_(restore_best_weights) {}

    template <class M>
    void on_train_begin(Logs&, M&) {
        best_ = detail::worst_value(monitor_);
        wait_ = 0;
        stopped_epoch_ = 0;
        best_weights_.clear();
    }
    template <class M>
    void on_epoch_end(std::size_t epoch, Logs& logs, M& model) {
        const auto v = logs.get(monitor_);
        if (!v) throw config_error("EarlyStopping: the logs have no \"" + monitor_ + "\" (is there validation data?)");
        if (detail::improved(monitor_, *v, best_, min_delta_)) {
            best_ = *v;
            wait_ = 0;
            best_epoch_ = epoch;
            if (restore_) {
                best_weights_.clear();
                for (const BufferRef& t : state_tensors(model.net())) best_weights_.emplace_back(t.value, t.value + t.size);
            }
        } else if (++wait_ > patience_) {
            model.stop_training = true;
            stopped_epoch_ = epoch;
        }
    }
    template <class M>
    void on_train_end(Logs&, M& model) {
        if (restore_ && !best_weights_.empty() && stopped_epoch_ > 0) {
            const auto ts = state_tensors(model.net());
            for (std::size_t i = 0; i < ts.size() && i < best_weights_.size(); ++i)
                std::copy(best_weights_[i].begin(), best_weights_[i].end(), ts[i].value);
            weights_changed(model.net());
        }
    }
    std::size_t stopped_epoch() const noexcept { return stopped_epoch_; }
    std::size_t best_epoch() const noexcept { return best_epoch_; }

private:
    std::string monitor_;
    std::size_t patience_;
    double min_delta_;
    bool restore_;
    double best_ = 0;
    std::size_t wait_ = 0, stopped_epoch_ = 0, best_epoch_ = 0;
    std::vector<std::vector<float>> best_weights_;
};

/// Saves the model (io::save_model, atomic) at the end of each epoch, or only when
/// `monitor` improved (`save_best_only`). `{epoch}` in the path is replaced by the
/// epoch number (from 1, as Keras writes it).
class ModelCheckpoint {
public:
    explicit ModelCheckpoint(std::filesystem::path path, std::string monitor = "val_loss", bool save_best_only = false,
                             std::map<std::string, std::string> meta = {})
        : path_(std::move(path)), monitor_(std::move(monitor)), best_only_(save_best_only), meta_(std::move(meta)) {}

    void on_train_begin(Logs&) { best_ = detail::worst_value(monitor_); }
    template <class M>
    void on_epoch_end(std::size_t epoch, Logs& logs, M& model) {
        if (best_only_) {
            const auto v = logs.get(monitor_);
            if (!v) throw config_error("ModelCheckpoint: the logs have no \"" + monitor_ + "\"");
            if (!detail::improved(monitor_, *v, best_, 0.0)) return;
            best_ = *v;
        }
        std::string p = path_.string();
        if (auto k = p.find("{epoch}"); k != std::string::npos) p.replace(k, 7, std::to_string(epoch + 1));
        io::SaveOptions o;
        o.meta = meta_;
        o.meta["epoch"] = std::to_string(epoch + 1);
        for (const auto& [k, v] : logs) o.meta["logs." + k] = std::to_string(v);
        io::save_model(model.net(), p, o);
        last_saved_ = p;
    }
    const std::string& last_saved() const noexcept { return last_saved_; }

private:
    std::filesystem::path path_;
    std::string monitor_;
    bool best_only_;
    std::map<std::string, std::string> meta_;
    double best_ = 0;
    std::string last_saved_;
};

}  // namespace typenet
