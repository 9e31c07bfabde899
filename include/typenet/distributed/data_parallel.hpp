/// @file distributed/data_parallel.hpp
/// Data-parallel training over MPI: the same `Model::fit` on several processes (one
/// per machine, or several per machine), each on its own share of every global batch.
///
/// ```cpp
/// distributed::Environment mpi(argc, argv);
/// distributed::Communicator comm;
/// ... build the same network, model and datasets on every process ...
/// auto train = dataset.shuffle(1900, seed).batch(64);        // 64 = the GLOBAL batch
/// History h = distributed::fit(model, train, {.epochs = 5, .validation = &val}, comm, csv);
/// Logs test = distributed::evaluate(model, test_batches, comm);
/// ```
///
/// What `fit` does, on top of `Model::fit`:
/// - each process trains on its shard of `train` (`BatchedDataset::shard`): with P
///   processes and global batch B, process r reads examples r*B/P .. (r+1)*B/P - 1 of
///   every global batch, in the global order of each epoch (up to P - 1 examples of
///   the last, partial batch may be left out so every process has as many: see
///   `data::ShardTail::equal`); nothing else is read or decoded there;
/// - rank 0's weights are broadcast first; after each backward pass the trainable
///   gradients are averaged (`GradientAverager`, in buckets): the step is the one a
///   single process would take on the global batch;
/// - optionally synchronised batch norm (`DataParallelOptions::sync_batchnorm`):
///   statistics and their gradients over the global batch; otherwise each process
///   normalises with its own batch, and the moving statistics are averaged over the
///   processes at the end of every epoch (before validation);
/// - the training figures given to callbacks are averaged over the processes, and
///   validation runs on a shard of the validation data per process with the loss and
///   metric sums added up (the figures are those of the whole validation set);
/// - callbacks run on every process; those that write files or print run on rank 0
///   only (see distributed/callbacks.hpp); only rank 0 prints progress (plain lines,
///   as with verbose 2);
/// - with a frozen first layer, the frozen-feature cache is filled by all processes
///   together: each extracts the features of 1/P of the training examples, then they
///   exchange them (MPI_Allgatherv), so every later epoch, whatever its shuffle,
///   finds every example's features locally.
///
/// An error on one process while the others wait for it in a collective would hang
/// the job: by default (`abort_on_error`) `fit` prints it and aborts the whole job.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/data/dataset.hpp"
#include "typenet/distributed/callbacks.hpp"
#include "typenet/distributed/gradients.hpp"
#include "typenet/distributed/mpi.hpp"
#include "typenet/distributed/weights.hpp"
#include "typenet/layers/batch_norm_core.hpp"
#include "typenet/train/callbacks.hpp"
#include "typenet/train/logs.hpp"
#include "typenet/train/model.hpp"
#include "typenet/train/progress.hpp"

namespace typenet::distributed {

/// Settings of data-parallel training.
struct DataParallelOptions {
    /// Batch norm in training mode uses the statistics of the global batch (an
    /// allreduce of per-channel sums per layer, forward and backward) instead of each
    /// process's own batch.
    bool sync_batchnorm = false;
    /// Target size of one gradient allreduce.
    std::size_t bucket_bytes = std::size_t{4} << 20;
    /// Fill the frozen-feature cache on all processes together (see the file comment).
    bool shared_feature_extraction = true;
    /// On an error inside training, print it and end the whole job (MPI_Abort) rather
    /// than leave the other processes waiting forever.
    bool abort_on_error = true;
};

namespace detail {

/// Sets the model's hooks (and batch norm's) for the lifetime of the object.
template <class M>
class HookScope {
public:
    HookScope(M& model, GradientAverager& averager, const Communicator& comm, bool sync_bn) : model_(model) {
        model.set_gradient_hook(std::ref(averager));
        model.set_metric_reducer([&comm](double* v, std::size_t n) { comm.allreduce(v, n); });
        if (sync_bn) {
            typenet::detail::batchnorm_sync() = [&comm](double* v, std::size_t n) { comm.allreduce(v, n); };
            bn_ = true;
        }
    }
    ~HookScope() {
        model_.set_gradient_hook({});
        model_.set_metric_reducer({});
        if (bn_) typenet::detail::batchnorm_sync() = {};
    }
    HookScope(const HookScope&) = delete;
    HookScope& operator=(const HookScope&) = delete;

private:
    M& model_;
    bool bn_ = false;
};

/// Only the metric reducer (evaluation).
template <class M>
class ReducerScope {
public:
    ReducerScope(M& model, const Communicator& comm) : model_(model) {
        model.set_metric_reducer([&comm](double* v, std::size_t n) { comm.allreduce(v, n); });
    }
    ~ReducerScope() { model_.set_metric_reducer({}); }
    ReducerScope(const ReducerScope&) = delete;
    ReducerScope& operator=(const ReducerScope&) = delete;

private:
    M& model_;
};

/// The first callback of a data-parallel fit: averages the training figures over the
/// processes before the other callbacks see them, averages the batch-norm moving
/// statistics after the last batch of an epoch (before validation), and checks at
/// each epoch's end that the copies of the model agree (re-broadcasting rank 0's
/// weights if rounding ever made them drift).
class SyncCallback {
public:
    explicit SyncCallback(const Communicator& comm) : comm_(comm) {}

    template <class M>
    void on_epoch_begin(std::size_t, Logs&, M&) {
        last_.clear();
    }
    template <class M>
    void on_train_batch_end(std::size_t batch, Logs& logs, M& model) {
        values_.clear();
        for (const auto& [k, v] : logs) values_.push_back(v);
        comm_.allreduce(values_.data(), values_.size());
        std::size_t i = 0;
        last_.clear();
        for (const auto& [k, v] : logs) last_.set(k, values_[i++] / comm_.size());
        for (const auto& [k, v] : last_) logs.set(k, v);
        if (batch + 1 == model.params().steps) average_buffers(model.net(), comm_);
    }
    template <class M>
    void on_epoch_end(std::size_t, Logs& logs, M& model) {
        for (const auto& [k, v] : last_) logs.set(k, v);  // the epoch's figures are its last batch's
        if (!weights_agree(model.net(), comm_)) {
            broadcast_weights(model.net(), comm_);
            ++resyncs_;
        }
    }
    /// Epochs after which the copies differed and were re-synchronised.
    std::size_t resyncs() const noexcept { return resyncs_; }

private:
    const Communicator& comm_;
    std::vector<double> values_;
    Logs last_;
    std::size_t resyncs_ = 0;
};

/// A callback as `distributed::fit` passes it: wrapped to run on rank 0 only when its
/// type says so (`rank0_only`).
template <class C>
auto adapt_callback(C& c, bool root) {
    if constexpr (rank0_only<C>::value) return OnRank0<C>(c, root);
    else return std::ref(c);
}
template <class C>
C& unwrap_callback(std::reference_wrapper<C> c) {
    return c.get();
}
template <class C>
OnRank0<C>& unwrap_callback(OnRank0<C>& c) {
    return c;
}

/// Throw config_error on every process unless all processes give the same `values`
/// (the same data and settings: the processes run the same program).
inline void require_agreement(const Communicator& comm, std::vector<std::uint64_t> values, const std::string& what) {
    std::vector<std::uint64_t> lo = values, hi = values;
    comm.allreduce(lo.data(), lo.size(), ReduceOp::min);
    comm.allreduce(hi.data(), hi.size(), ReduceOp::max);
    if (lo != hi)
        throw config_error("distributed: the processes disagree on " + what +
                           " (every process must build the same datasets and settings)");
}

}  // namespace detail

/// Data-parallel training and evaluation on a communicator (see the file comment).
class DataParallel {
public:
    explicit DataParallel(const Communicator& comm, DataParallelOptions options = {})
        : comm_(comm), options_(options), averager_(comm, options.bucket_bytes) {}

    /// `model.fit(train, options, callbacks...)` on every process, each on its shard of
    /// `train` (whose batch size is the global batch: a multiple of the number of
    /// processes). Returns the history (the same on every process).
    /// @throws config_error when the processes' data or settings differ, or the batch
    /// size is not a multiple of the number of processes.
    template <class M, class... Cbs>
    History fit(M& model, const data::BatchedDataset& train, const FitOptions& options = {}, Cbs&... callbacks) {
        const auto P = static_cast<std::size_t>(comm_.size()), r = static_cast<std::size_t>(comm_.rank());
        const bool root = comm_.is_root();
        std::ostream* out = root && options.verbose ? options.out : nullptr;
        detail::require_agreement(comm_,
                                  {train.num_examples(), train.batch_size(), train.size(), options.epochs,
                                   train.next_epoch(), options.validation != nullptr},
                                  "the training data or settings (examples, batch size, epochs, next epoch)");
        if (options.validation)
            detail::require_agreement(comm_, {options.validation->num_examples(), options.validation->batch_size()},
                                      "the validation data");
        std::uint64_t trainable = 1469598103934665603ull;  // which tensors are trained: the buckets' layout
        for (const ParamRef& p : model.net().parameters())
            trainable = (trainable ^ (p.trainable ? p.size : ~p.size)) * 1099511628211ull;
        detail::require_agreement(comm_, {trainable}, "which parameters are trainable");
        const data::BatchedDataset local = train.shard(P, r, data::ShardTail::equal);
        local.set_next_epoch(train.next_epoch());
        std::optional<data::BatchedDataset> val_local;
        if (options.validation) val_local = options.validation->shard(P, r, data::ShardTail::all);

        broadcast_weights(model.net(), comm_);
        if (out)
            *out << "data-parallel training on " << P << " processes: global batch " << train.batch_size() << " ("
                 << local.batch_size() << " per process), " << local.size() << " steps per epoch, "
                 << (options_.sync_batchnorm ? "synchronised" : "per-process") << " batch norm\n"
                 << std::flush;

        detail::HookScope<M> hooks(model, averager_, comm_, options_.sync_batchnorm);
        if (options.feature_cache && options_.shared_feature_extraction) share_features(model, train, out);

        FitOptions inner = options;
        inner.verbose = 0;
        inner.validation = val_local ? &*val_local : nullptr;
        detail::SyncCallback sync(comm_);
        History history;
        // Plain lines: mpirun forwards output through pseudo-terminals, so whether the
        // user's output is a terminal cannot be told from here.
        ProgressBar bar(*options.out, 0);
        OnRank0<ProgressBar> shown(bar, root && options.verbose != 0);
        auto adapted = std::tuple{detail::adapt_callback(callbacks, root)...};
        try {
            std::apply(
                [&](auto&... a) { model.fit(local, inner, sync, history, shown, detail::unwrap_callback(a)...); },
                adapted);
        } catch (const std::exception& e) {
            if (!options_.abort_on_error || P == 1) throw;
            std::fprintf(stderr, "typenet: rank %zu of %zu: %s; aborting the job (the other processes would wait for "
                                 "this one forever)\n", r, P, e.what());
            std::fflush(stderr);
            comm_.abort(1);
        }
        train.set_next_epoch(local.next_epoch());
        resyncs_ += sync.resyncs();
        return history;
    }

    /// `model.evaluate(data)` over all of `data`, each process evaluating its shard;
    /// the figures are those of the whole dataset (the same on every process).
    template <class M>
    Logs evaluate(M& model, const data::BatchedDataset& data) {
        detail::require_agreement(comm_, {data.num_examples(), data.batch_size()}, "the evaluation data");
        const data::BatchedDataset local =
            data.shard(static_cast<std::size_t>(comm_.size()), static_cast<std::size_t>(comm_.rank()), data::ShardTail::all);
        detail::ReducerScope<M> scope(model, comm_);
        return model.evaluate(local);
    }

    /// What averaging the gradients cost so far (time, bytes and allreduce calls per step).
    const GradientStats& gradient_stats() const noexcept { return averager_.stats(); }
    /// Epochs after which the model copies had drifted apart and were re-synchronised
    /// (0 expected: MPI gives every process the same sums).
    std::size_t resyncs() const noexcept { return resyncs_; }
    const Communicator& communicator() const noexcept { return comm_; }
    const DataParallelOptions& options() const noexcept { return options_; }

private:
    /// Fill every process's frozen-feature cache: each extracts 1/P of the training
    /// examples, then all exchange them. Does nothing when `fit` will not use the cache.
    template <class M>
    void share_features(M& model, const data::BatchedDataset& train, std::ostream* out) {
        using Net = typename M::net_type;
        if constexpr (typenet::detail::is_sequential<Net>::value && Net::size >= 2) {
            auto& first = model.net().template layer<0>();
            using First = std::remove_cvref_t<decltype(first.get())>;
            if (first.is_trainable() || typenet::detail::random_in_training<First>::value || train.random_transforms())
                return;
            const std::string sig = "\n" + train.signature();
            const std::vector<std::string> sources = train.sources(train.next_epoch());
            std::uint64_t missing = 0;
            auto cache = model.feature_cache();
            cache->check_fingerprint(FeatureCache::fingerprint_of(first.get()));
            for (const auto& s : sources) {
                if (s.empty()) return;  // the model refuses the cache too (every process alike)
                missing += cache->find(s + sig) < 0;
            }
            if (comm_.allreduce_value(missing) == 0) return;
            const auto t0 = std::chrono::steady_clock::now();
            const auto P = static_cast<std::size_t>(comm_.size()), r = static_cast<std::size_t>(comm_.rank());
            // Epoch 0 of a shard with every example kept: the processes' parts make up the data set.
            const data::BatchedDataset part = train.shard(P, r, data::ShardTail::all);
            const Tensor<2> f = model.features(part);
            const std::vector<std::string> mine = part.sources(0);
            const std::vector<std::int32_t> labels = part.labels(0);
            const auto width = comm_.allreduce_value<std::uint64_t>(f.shape()[1], ReduceOp::max);
            std::string names;
            for (const auto& s : mine) names += s + '\0';
            std::vector<std::size_t> counts;
            const std::vector<float> all_f = comm_.allgather(f.data(), f.size());
            const std::vector<std::int32_t> all_l = comm_.allgather(labels.data(), labels.size(), &counts);
            const std::vector<char> all_n = comm_.allgather(names.data(), names.size());
            std::size_t row = 0, at = 0;
            for (std::size_t k = 0; k < all_l.size(); ++k) {
                const std::size_t end = std::string_view(all_n.data() + at, all_n.size() - at).find('\0') + at;
                cache->add(std::string(all_n.data() + at, end - at) + sig, all_f.data() + row * width, width, all_l[k]);
                at = end + 1;
                ++row;
            }
            if (out)
                *out << "feature cache: " << sources.size() << " examples' features extracted by " << P
                     << " processes (" << counts[0] << " on rank 0) and exchanged in "
                     << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n"
                     << std::flush;
        }
    }

    const Communicator& comm_;
    DataParallelOptions options_;
    GradientAverager averager_;
    std::size_t resyncs_ = 0;
};

/// Data-parallel `model.fit` (see the file comment) with default `DataParallelOptions`.
template <class M, class... Cbs>
History fit(M& model, const data::BatchedDataset& train, const FitOptions& options, const Communicator& comm,
            Cbs&... callbacks) {
    DataParallel dp(comm);
    return dp.fit(model, train, options, callbacks...);
}

/// Data-parallel `model.evaluate`: the figures of all of `data`, each process
/// evaluating its shard.
template <class M>
Logs evaluate(M& model, const data::BatchedDataset& data, const Communicator& comm) {
    DataParallel dp(comm);
    return dp.evaluate(model, data);
}

}  // namespace typenet::distributed
