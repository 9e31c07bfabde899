/// @file train/model.hpp
/// The Model API: `compile`, `fit`, `evaluate`, `predict`, `summary`, as Keras has them.
///
/// ```cpp
/// Sequential<models::MobileNetV2<>, Dropout<0.5f>, Dense<3, Softmax>> net;
/// net.build({224, 224, 3});
/// io::load_mobilenet_v2_imagenet(net.layer<0>());
/// net.layer<0>().set_trainable(false);
///
/// auto model = compile(net, Adam(1e-3f), CategoricalCrossentropy<>(), CategoricalAccuracy());
/// std::cout << model.summary();
/// BatchStats stats;                                   // a user callback
/// History history = model.fit(train, {.epochs = 5, .validation = &validation}, stats);
/// Logs test = model.evaluate(test_batches);           // test["loss"], test["accuracy"]
/// Tensor<2> probabilities = model.predict(test_batches);
/// ```
///
/// `fit` takes batched datasets (`data::BatchedDataset`): images NHWC and targets
/// (one-hot rows, or class indices that are turned into one-hot rows when the loss is
/// categorical). Metrics are running averages over the epoch, as in Keras (a callback
/// may call `reset_metrics()` to make them per batch); an epoch's training figures
/// are those of its last batch, which is the epoch's average unless reset.
///
/// **Frozen-feature cache.** When the first layer of the network is frozen, makes no
/// random draws, and the training data has no random transforms (after the last
/// `cache()`), the first layer's output for an example never changes: `fit` computes
/// it once per example (the first epoch's pass over the data) and trains the rest of
/// the network on the stored features, the same batches in the same order as without
/// the cache, with the same dropout masks. For transfer learning on a frozen backbone
/// this turns every epoch after the first into a fraction of a second. On by default
/// (`FitOptions::feature_cache`); `fit` says when it is used or why not.
#pragma once

#include <chrono>
#include <cmath>
#include <cstddef>
#include <iostream>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/core/layer.hpp"
#include "typenet/core/parameter.hpp"
#include "typenet/core/sequential.hpp"
#include "typenet/core/tensor.hpp"
#include "typenet/data/dataset.hpp"
#include "typenet/layers/dropout.hpp"
#include "typenet/losses/loss.hpp"
#include "typenet/metrics/categorical_accuracy.hpp"
#include "typenet/metrics/mean.hpp"
#include "typenet/metrics/metric.hpp"
#include "typenet/optimizers/optimizer.hpp"
#include "typenet/train/callbacks.hpp"
#include "typenet/train/feature_cache.hpp"
#include "typenet/train/logs.hpp"
#include "typenet/train/progress.hpp"
#include "typenet/train/step.hpp"

namespace typenet {

/// Settings of `fit`.
struct FitOptions {
    std::size_t epochs = 1;
    /// Evaluated at the end of each epoch ("val_loss", "val_<metric>").
    const data::BatchedDataset* validation = nullptr;
    /// 0: silent, 1: progress bar, 2: one line per epoch (a progress bar that never redraws).
    int verbose = 1;
    /// Train on stored features of a frozen first layer when possible (see the file comment).
    bool feature_cache = true;
    /// Where messages (progress, cache notes) go.
    std::ostream* out = &std::cout;
    /// Check the loss, every layer's output and every gradient for NaN and infinity
    /// at each step; on the first one, stop with a numeric_error naming the layer (or
    /// "loss", or the parameter) before the optimizer step, so the weights stay the last
    /// good ones. Costs a pass over the activations each step.
    bool check_numerics = false;
};

namespace detail {

/// Does a layer type make random draws in training mode (so its output is not a
/// function of its input alone)? Dropout does; containers do if a part does; a type
/// may say so with `static constexpr bool random_in_training`.
template <class L>
struct random_in_training : std::bool_constant<requires { requires static_cast<bool>(L::random_in_training); }> {};
template <float R>
struct random_in_training<Dropout<R>> : std::bool_constant<(R > 0.0f)> {};
template <class... Ls>
struct random_in_training<Sequential<Ls...>> : std::bool_constant<(random_in_training<Ls>::value || ...)> {};

template <class N>
struct is_sequential : std::false_type {};
template <class... Ls>
struct is_sequential<Sequential<Ls...>> : std::true_type {};

/// One-hot or sparse targets for the loss from a batch's targets and labels.
inline void targets_for(const Tensor<2>& given, const std::vector<std::int32_t>& labels, std::size_t k, bool sparse,
                        Tensor<2>& out) {
    const std::size_t n = labels.size();
    if (!sparse && given.shape()[0] == n && given.shape()[1] == k) {
        ensure_shape(out, {n, k});
        std::copy(given.begin(), given.end(), out.begin());
        return;
    }
    if (sparse) {
        ensure_shape(out, {n, 1});
        for (std::size_t i = 0; i < n; ++i) out(i, 0) = static_cast<float>(labels[i]);
        return;
    }
    ensure_shape(out, {n, k});
    out.fill(0.0f);
    for (std::size_t i = 0; i < n; ++i) {
        const auto l = labels[i];
        if (l < 0 || static_cast<std::size_t>(l) >= k)
            throw shape_error("label " + std::to_string(l) + " of example " + std::to_string(i) +
                              " is not a class of a model with " + std::to_string(k) + " outputs");
        out(i, static_cast<std::size_t>(l)) = 1.0f;
    }
}

}  // namespace detail

/// A compiled model: the network (held by reference), its optimizer, loss and metrics.
template <class Net, class Opt, class L, class... Ms>
class Model {
    static_assert(Optimizer<Opt>, "typenet: compile: the second argument is not an Optimizer (see docs/concepts.md)");
    static_assert(Loss<L>, "typenet: compile: the third argument is not a Loss (see docs/concepts.md)");
    static_assert((Metric<Ms> && ...), "typenet: compile: a metric argument is not a Metric (see docs/concepts.md)");
    static_assert(Net::output_rank == 2, "typenet: compile: the model must output (batch, classes)");

public:
    using net_type = Net;
    using input_type = typename Net::input_type;

    Model(Net& net, Opt optimizer, L loss, Ms... metrics)
        : net_(net), opt_(std::move(optimizer)), loss_(std::move(loss)), metrics_(std::move(metrics)...) {
        [[maybe_unused]] constexpr bool agree = check_loss_matches_model<Net, L>();
    }

    /// Set by a callback to end `fit` after the current epoch.
    bool stop_training = false;

    Net& net() noexcept { return net_; }
    Opt& optimizer() noexcept { return opt_; }
    L& loss() noexcept { return loss_; }
    /// What the running `fit` tells callbacks.
    const FitParams& params() const noexcept { return params_; }

    /// Keras-style summary of the network.
    std::string summary(const std::string& name = "sequential") { return net_.summary(name); }

    /// Reset the running loss and metrics (Keras's reset_metrics; a callback can call
    /// it after each batch to get per-batch figures).
    void reset_metrics() {
        loss_mean_.reset();
        std::apply([](auto&... m) { (m.reset(), ...); }, metrics_);
    }

    /// Train for `options.epochs` epochs; returns the per-epoch history. Callbacks are
    /// any objects with the methods listed in train/callbacks.hpp.
    template <class... Cbs>
    History fit(const data::BatchedDataset& train, const FitOptions& options = {}, Cbs&... callbacks) {
        static_assert((Callback<Cbs, Model> && ...),
                      "typenet: fit: a callback argument has none of on_train_begin, on_train_end, on_epoch_begin, "
                      "on_epoch_end, on_train_batch_begin, on_train_batch_end, on_test_batch_end (misspelt?)");
        std::ostream* note = options.verbose ? options.out : nullptr;
        History history;
        ProgressBar bar(*options.out, options.verbose == 2 ? 0 : -1);
        params_ = FitParams{options.epochs, train.size(), options.verbose, false};
        stop_training = false;
        check_numerics_ = options.check_numerics;
        step_ = 0;
        const bool use_cache = options.feature_cache && cache_usable(train, note, true);
        params_.cached_features = use_cache;
        const bool cache_validation =
            use_cache && options.validation && cache_usable(*options.validation, nullptr, false);

        Logs logs;
        auto each = [&](auto&& fn) {
            fn(history);
            if (options.verbose) fn(bar);
            (fn(callbacks), ...);
        };
        each([&](auto& c) { detail::call_on_train_begin(c, *this, logs); });
        for (std::size_t epoch = 0; epoch < options.epochs && !stop_training; ++epoch) {
            logs.clear();
            reset_metrics();
            // Extract before the epoch's progress bar starts (it has its own progress lines).
            const std::uint64_t data_epoch = train.next_epoch();
            if (use_cache) ensure_features(train, data_epoch, note, "training");
            each([&](auto& c) { detail::call_on_epoch_begin(c, *this, epoch, logs); });
            train.set_next_epoch(data_epoch + 1);
            std::size_t b = 0;
            Logs last_batch;  // as in Keras, the epoch's training figures are the last batch's logs
            auto step = [&](const auto& x, const Tensor<2>& given, const std::vector<std::int32_t>& labels,
                            auto&& forward, auto&& backward) {
                Logs batch_logs;
                each([&](auto& c) { detail::call_on_train_batch_begin(c, *this, b, batch_logs); });
                const auto& out = forward(x);
                step_from_output(out, given, labels, batch_logs, backward);
                last_batch = batch_logs;
                each([&](auto& c) { detail::call_on_train_batch_end(c, *this, b, batch_logs); });
                ++b;
            };
            if (use_cache) {
                if constexpr (detail::is_sequential<Net>::value && Net::size >= 2) {
                    for_each_cached_batch(train, data_epoch, [&](const Tensor<2>& xf, const std::vector<std::int32_t>& l) {
                        step(xf, empty_, l, [&](const Tensor<2>& f) -> const Tensor<2>& { return net_.template forward_from<1>(f, true); },
                             [&](const Tensor<2>& g) { net_.template backward_from<1>(g); });
                    });
                }
            } else {
                for (auto it = train.begin_epoch(data_epoch); it != train.end(); ++it)
                    step(it->images, it->targets, it->labels,
                         [&](const input_type& x) -> const Tensor<2>& { return net_.forward(x, true); },
                         [&](const Tensor<2>& g) { net_.backward(g); });
            }
            if (b) logs = last_batch;
            else write_logs(logs, "");
            if (options.validation) {
                const Logs v = cache_validation ? evaluate_cached(*options.validation, note) : evaluate_direct(*options.validation);
                for (const auto& [k, val] : v) logs.set("val_" + k, val);
            }
            each([&](auto& c) { detail::call_on_epoch_end(c, *this, epoch, logs); });
        }
        each([&](auto& c) { detail::call_on_train_end(c, *this, logs); });
        return history;
    }

    /// Loss and metrics over a dataset (evaluation mode). Uses the frozen-feature cache
    /// when the first layer is frozen and the data has no random transforms.
    template <class... Cbs>
    Logs evaluate(const data::BatchedDataset& data, Cbs&... callbacks) {
        if (sizeof...(Cbs) == 0 && cache_usable(data, nullptr, false)) return evaluate_cached(data, nullptr);
        return evaluate_direct(data, callbacks...);
    }

    /// The model's outputs (probabilities) for every example of `data`, in order.
    Tensor<2> predict(const data::BatchedDataset& data) {
        Tensor<2> all;
        std::size_t row = 0;
        auto keep = [&](const Tensor<2>& y) {
            if (row == 0) all = Tensor<2>(Shape<2>{data.num_examples(), y.shape()[1]});
            std::copy(y.begin(), y.end(), all.data() + row * y.shape()[1]);
            row += y.shape()[0];
        };
        if (cache_usable(data, nullptr, false)) {
            if constexpr (detail::is_sequential<Net>::value && Net::size >= 2) {
                ensure_features(data, 0, nullptr, "prediction");
                for_each_cached_batch(data, 0, [&](const Tensor<2>& xf, const std::vector<std::int32_t>&) {
                    keep(net_.template forward_from<1>(xf, false));
                });
            }
        } else {
            for (auto it = data.begin_epoch(0); it != data.end(); ++it) keep(net_.forward(it->images));
        }
        if (row != all.shape()[0]) {
            Tensor<2> cut(Shape<2>{row, all.shape()[1]});
            std::copy(all.data(), all.data() + cut.size(), cut.data());
            return cut;
        }
        return all;
    }

    /// The frozen first layer's output (e.g. the backbone's 1,280 features) for every
    /// example of `data`, in order, through the feature cache.
    /// @throws config_error when the first layer is not frozen or the data is random.
    Tensor<2> features(const data::BatchedDataset& data) {
        if (!cache_usable(data, nullptr, false))
            throw config_error("Model::features: needs a frozen first layer and data without random transforms");
        Tensor<2> all;
        if constexpr (detail::is_sequential<Net>::value && Net::size >= 2) {
            ensure_features(data, 0, nullptr, "features");
            all = Tensor<2>(Shape<2>{data.num_examples(), cache_->width()});
            std::size_t row = 0;
            for_each_cached_batch(data, 0, [&](const Tensor<2>& xf, const std::vector<std::int32_t>&) {
                std::copy(xf.begin(), xf.end(), all.data() + row * xf.shape()[1]);
                row += xf.shape()[0];
            });
        }
        return all;
    }

    /// Call `hook(params)` after each backward pass, before the optimizer step (data-
    /// parallel training averages the gradients across processes there).
    void set_gradient_hook(std::function<void(std::vector<ParamRef>&)> hook) { gradient_hook_ = std::move(hook); }
    /// Call `reduce(values, n)` on the running loss and metric state before evaluation
    /// figures are read (data-parallel evaluation sums them across processes there).
    void set_metric_reducer(std::function<void(double*, std::size_t)> reduce) { metric_reducer_ = std::move(reduce); }

    /// Use `cache` for the frozen-feature cache (shared with other models whose first
    /// layer has the same weights; the cache checks that itself).
    void share_feature_cache(std::shared_ptr<FeatureCache> cache) { cache_ = std::move(cache); }
    std::shared_ptr<FeatureCache> feature_cache() const { return cache_; }

    /// The model's outputs for one batch (valid until the next call).
    const Tensor<2>& predict(const input_type& x) { return net_.forward(x); }

    /// One training step on (x, targets); returns the batch's loss.
    float train_on_batch(const input_type& x, const Tensor<2>& y) {
        Logs l;
        std::vector<std::int32_t> labels = labels_of(y);
        train_batch(x, y, labels, l);
        return static_cast<float>(l["loss"]);
    }

private:
    static constexpr bool sparse_loss = loss_uses_sparse_targets<L>();

    static std::vector<std::int32_t> labels_of(const Tensor<2>& y) {
        std::vector<std::int32_t> l(y.shape()[0]);
        for (std::size_t i = 0; i < l.size(); ++i) {
            if (y.shape()[1] == 1) l[i] = static_cast<std::int32_t>(y(i, 0));
            else l[i] = static_cast<std::int32_t>(CategoricalAccuracy::argmax(&y(i, 0), y.shape()[1]));
        }
        return l;
    }

    std::size_t classes() const { return classes_; }

    void update_metrics(const Tensor<2>& out, const Tensor<2>& y, float loss, std::size_t n) {
        loss_mean_.add(loss, static_cast<double>(n));
        std::apply([&](auto&... m) { (m.update(out, y), ...); }, metrics_);
    }
    void write_logs(Logs& logs, const std::string& prefix, bool reduce = false) const {
        if (metric_reducer_ && reduce) {
            // Sum the running state of the loss and of every metric over the processes.
            std::vector<double> st = loss_mean_.state();
            std::apply([&](const auto&... m) { (append_state(st, m), ...); }, metrics_);
            metric_reducer_(st.data(), st.size());
            Mean l = loss_mean_;
            l.set_state({st[0], st[1]});
            logs.set(prefix + "loss", l.result());
            std::size_t at = 2;
            std::apply([&](const auto&... m) { (set_from_state(logs, prefix, m, st, at), ...); }, metrics_);
            return;
        }
        logs.set(prefix + "loss", loss_mean_.result());
        std::apply([&](const auto&... m) { (logs.set(prefix + m.name(), m.result()), ...); }, metrics_);
    }

    template <class Met>
    static void append_state(std::vector<double>& st, const Met& m) {
        if constexpr (requires { m.state(); }) {
            const auto s = m.state();
            st.insert(st.end(), s.begin(), s.end());
        }
    }
    template <class Met>
    static void set_from_state(Logs& logs, const std::string& prefix, const Met& m, const std::vector<double>& st,
                               std::size_t& at) {
        if constexpr (requires { m.state(); }) {
            Met copy = m;
            const std::size_t n = m.state().size();
            copy.set_state(std::vector<double>(st.begin() + static_cast<long>(at), st.begin() + static_cast<long>(at + n)));
            at += n;
            logs.set(prefix + m.name(), copy.result());
        } else {
            logs.set(prefix + m.name(), m.result());
        }
    }

    void train_batch(const input_type& x, const Tensor<2>& given, const std::vector<std::int32_t>& labels, Logs& bl) {
        const auto& out = net_.forward(x, true);
        step_from_output(out, given, labels, bl, [&](const Tensor<2>& g) { net_.backward(g); });
    }
    template <class Backward>
    void step_from_output(const Tensor<2>& out, const Tensor<2>& given, const std::vector<std::int32_t>& labels,
                          Logs& bl, Backward&& backward) {
        classes_ = out.shape()[1];
        detail::targets_for(given, labels, classes_, sparse_loss, y_);
        const float l = loss_.forward(out, y_);
        const std::string at = " (training step " + std::to_string(step_) + ")";
        if (check_numerics_) {
            const std::string layer = net_.first_non_finite_output();
            if (!layer.empty()) throw numeric_error(layer, "NaN or infinity in the layer's output" + at + "; weights left as before the step");
            if (!std::isfinite(l)) throw numeric_error("loss", "the loss is " + std::to_string(l) + at + "; weights left as before the step");
        }
        ensure_shape(grad_, shape_of(out));
        loss_.backward(out, y_, grad_);
        backward(grad_);
        if (check_numerics_) {
            const std::string param = net_.first_non_finite_gradient();
            if (!param.empty())
                throw numeric_error(param.substr(0, param.find('/')),
                                    "NaN or infinity in the gradient of " + param + at + "; weights left as before the step");
        }
        std::vector<ParamRef> ps = net_.parameters();
        if (gradient_hook_) gradient_hook_(ps);
        opt_.step(ps);
        ++step_;
        update_metrics(out, y_, l, labels.size());
        write_logs(bl, "");
    }
    void test_batch(const input_type& x, const Tensor<2>& given, const std::vector<std::int32_t>& labels) {
        const auto& out = net_.forward(x, false);
        classes_ = out.shape()[1];
        detail::targets_for(given, labels, classes_, sparse_loss, y_);
        update_metrics(out, y_, loss_.forward(out, y_), labels.size());
    }

    template <class... Cbs>
    Logs evaluate_direct(const data::BatchedDataset& data, Cbs&... callbacks) {
        reset_metrics();
        std::size_t b = 0;
        for (auto it = data.begin_epoch(0); it != data.end(); ++it, ++b) {
            test_batch(it->images, it->targets, it->labels);
            Logs bl;
            write_logs(bl, "");
            (detail::call_on_test_batch_end(callbacks, *this, b, bl), ...);
        }
        Logs out;
        write_logs(out, "", true);
        return out;
    }

    // ------------------------------------------------------- feature cache
    /// Can the first layer's output for `data` be taken from the cache? (For training,
    /// `why` explains a refusal on `out`.)
    bool cache_usable(const data::BatchedDataset& data, std::ostream* out, bool training) {
        if constexpr (!detail::is_sequential<Net>::value) {
            return false;
        } else if constexpr (Net::size < 2) {
            return false;
        } else {
            using First = std::remove_cvref_t<decltype(net_.template layer<0>().get())>;
            std::string why;
            if (net_.template layer<0>().is_trainable()) why = "the first layer is trainable";
            else if (training && detail::random_in_training<First>::value)
                why = "the first layer makes random draws in training";
            else if (data.random_transforms()) why = "the data has random transforms (augmentation)";
            else {
                for (const auto& s : data.sources(0))
                    if (s.empty()) {
                        why = "some examples have no source to identify them";
                        break;
                    }
            }
            if (!why.empty()) {
                if (out) *out << "feature cache off: " << why << "\n";
                return false;
            }
            cache_->check_fingerprint(FeatureCache::fingerprint_of(net_.template layer<0>().get()));
            return true;
        }
    }

    /// Run the frozen first layer on every example of `data` (epoch `epoch`) whose
    /// features are not cached yet.
    void ensure_features(const data::BatchedDataset& data, std::uint64_t epoch, std::ostream* out, const char* what) {
        if constexpr (detail::is_sequential<Net>::value && Net::size >= 2) {
            const std::string sig = "\n" + data.signature();
            std::size_t missing = 0;
            for (const auto& s : data.sources(epoch)) missing += cache_->find(s + sig) < 0;
            if (missing == 0) return;
            auto& first = net_.template layer<0>();
            const auto t0 = std::chrono::steady_clock::now();
            Tensor<Net::ranks[1]> f;
            Context ctx;
            ctx.training = false;
            ctx.trainable = false;
            ctx.backward = false;
            ctx.input_gradient = false;
            ctx.scratch = &scratch_;
            std::size_t done = 0;
            const std::size_t total = data.num_examples();
            double last_note = -1;
            for (auto it = data.begin_epoch(epoch); it != data.end(); ++it) {
                const std::size_t n = it->size();
                bool any = false;
                for (std::size_t i = 0; i < n && !any; ++i) any = cache_->find(it->sources[i] + sig) < 0;
                if (any) {
                    ensure_shape(f, first.output_shape(shape_of(it->images)));
                    first.forward(it->images, f, ctx);
                    const std::size_t width = f.size() / n;
                    for (std::size_t i = 0; i < n; ++i)
                        cache_->add(it->sources[i] + sig, f.data() + i * width, width, it->labels[i]);
                }
                done += n;
                const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                if (out && (el - last_note > 5.0 || done == total)) {
                    last_note = el;
                    *out << "feature cache: " << what << " features " << done << "/" << total << " ("
                         << static_cast<long>(static_cast<double>(done) / std::max(el, 1e-9)) << " images/s)\n"
                         << std::flush;
                }
            }
        }
    }

    /// Call `fn(features, labels)` for each batch of epoch `epoch` of `data`, from the cache.
    template <class Fn>
    void for_each_cached_batch(const data::BatchedDataset& data, std::uint64_t epoch, Fn&& fn) {
        const std::string sig = "\n" + data.signature();
        const auto sources = data.sources(epoch);
        const std::size_t bs = data.batch_size(), n = sources.size(), w = cache_->width(), steps = data.size();
        for (std::size_t b = 0; b < steps; ++b) {
            const std::size_t start = b * bs, m = std::min(bs, n - start);
            ensure_shape(xf_, {m, w});
            labels_.resize(m);
            for (std::size_t i = 0; i < m; ++i) {
                const long r = cache_->find(sources[start + i] + sig);
                if (r < 0) throw config_error("feature cache: no features for " + sources[start + i]);
                std::copy(cache_->row(static_cast<std::size_t>(r)), cache_->row(static_cast<std::size_t>(r)) + w,
                          xf_.data() + i * w);
                labels_[i] = cache_->label(static_cast<std::size_t>(r));
            }
            fn(xf_, labels_);
        }
    }

    Logs evaluate_cached(const data::BatchedDataset& data, std::ostream* out) {
        if constexpr (detail::is_sequential<Net>::value && Net::size >= 2) {
            ensure_features(data, 0, out, "evaluation");
            reset_metrics();
            for_each_cached_batch(data, 0, [&](const Tensor<2>& xf, const std::vector<std::int32_t>& l) {
                const auto& y = net_.template forward_from<1>(xf, false);
                classes_ = y.shape()[1];
                detail::targets_for(empty_, l, classes_, sparse_loss, y_);
                update_metrics(y, y_, loss_.forward(y, y_), l.size());
            });
            Logs r;
            write_logs(r, "", true);
            return r;
        } else {
            return evaluate_direct(data);
        }
    }

    Net& net_;
    Opt opt_;
    L loss_;
    std::tuple<Ms...> metrics_;
    Mean loss_mean_{"loss"};
    FitParams params_;
    std::size_t classes_ = 0;
    bool check_numerics_ = false;
    std::function<void(std::vector<ParamRef>&)> gradient_hook_;
    std::function<void(double*, std::size_t)> metric_reducer_;
    std::uint64_t step_ = 0;
    Tensor<2> y_, grad_, xf_, empty_;
    std::vector<std::int32_t> labels_;
    Scratch scratch_;
    std::shared_ptr<FeatureCache> cache_ = std::make_shared<FeatureCache>();
};

/// Keras's `model.compile(optimizer, loss, metrics)`: bind a network (kept by
/// reference: it must outlive the model) to an optimizer, a loss and metrics.
template <class Net, class Opt, class L, class... Ms>
Model<Net, Opt, L, Ms...> compile(Net& net, Opt optimizer, L loss, Ms... metrics) {
    return Model<Net, Opt, L, Ms...>(net, std::move(optimizer), std::move(loss), std::move(metrics)...);
}
template <class Net, class Opt, class L, class... Ms>
void compile(Net&& net, Opt, L, Ms...) requires(!std::is_lvalue_reference_v<Net>) = delete;

}  // namespace typenet
