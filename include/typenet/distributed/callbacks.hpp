/// @file distributed/callbacks.hpp
/// Callbacks in data-parallel training: which run where.
///
/// The rule: every callback runs on every process, in the same order, and sees the
/// same logs (training figures averaged over the processes, validation figures
/// computed over all of the validation data). So callbacks that steer training
/// (`LearningRateScheduler`, `EarlyStopping`, one that calls `reset_metrics()` or sets
/// `stop_training`) take the same decisions everywhere and the model copies stay
/// identical. Callbacks with effects outside the process (files, printing) must run
/// on rank 0 only: wrap them with `on_rank0(comm, callback)`. `CSVLogger`,
/// `ModelCheckpoint` and `ProgressBar` are wrapped automatically by
/// `distributed::fit` (the `rank0_only` trait; specialise it for types of your own).
/// A wrapped callback gets a copy of the logs: what it writes into them is not seen
/// by the other callbacks (which may run on processes where it does not).
#pragma once

#include <cstddef>
#include <type_traits>

#include "typenet/distributed/mpi.hpp"
#include "typenet/train/callbacks.hpp"
#include "typenet/train/logs.hpp"
#include "typenet/train/progress.hpp"

namespace typenet::distributed {

/// Runs callback `C` on rank 0 only (see the file comment); a reference to the callback
/// is kept, so it must outlive `fit`.
template <class C>
class OnRank0 {
public:
    /// `active`: is this process rank 0?
    OnRank0(C& callback, bool active) : cb_(callback), active_(active) {}

    template <class M>
    void on_train_begin(Logs& logs, M& model) {
        if (!active_) return;
        Logs copy = logs;
        typenet::detail::call_on_train_begin(cb_, model, copy);
    }
    template <class M>
    void on_train_end(Logs& logs, M& model) {
        if (!active_) return;
        Logs copy = logs;
        typenet::detail::call_on_train_end(cb_, model, copy);
    }
    template <class M>
    void on_epoch_begin(std::size_t epoch, Logs& logs, M& model) {
        if (!active_) return;
        Logs copy = logs;
        typenet::detail::call_on_epoch_begin(cb_, model, epoch, copy);
    }
    template <class M>
    void on_epoch_end(std::size_t epoch, Logs& logs, M& model) {
        if (!active_) return;
        Logs copy = logs;
        typenet::detail::call_on_epoch_end(cb_, model, epoch, copy);
    }
    template <class M>
    void on_train_batch_begin(std::size_t batch, Logs& logs, M& model) {
        if (!active_) return;
        Logs copy = logs;
        typenet::detail::call_on_train_batch_begin(cb_, model, batch, copy);
    }
    template <class M>
    void on_train_batch_end(std::size_t batch, Logs& logs, M& model) {
        if (!active_) return;
        Logs copy = logs;
        typenet::detail::call_on_train_batch_end(cb_, model, batch, copy);
    }
    template <class M>
    void on_test_batch_end(std::size_t batch, Logs& logs, M& model) {
        if (!active_) return;
        Logs copy = logs;
        typenet::detail::call_on_test_batch_end(cb_, model, batch, copy);
    }

    /// Does the wrapped callback run in this process?
    bool active() const noexcept { return active_; }
    /// The wrapped callback.
    C& get() noexcept { return cb_; }

private:
    C& cb_;
    bool active_;
};

/// `callback`, run on rank 0 of `comm` only.
template <class C>
OnRank0<C> on_rank0(const Communicator& comm, C& callback) {
    return OnRank0<C>(callback, comm.is_root());
}

/// Callbacks `distributed::fit` runs on rank 0 only without being asked (they write
/// files or print). Specialise as `std::true_type` for callbacks of your own.
template <class C>
struct rank0_only : std::false_type {};
template <>
struct rank0_only<CSVLogger> : std::true_type {};
template <>
struct rank0_only<ModelCheckpoint> : std::true_type {};
template <>
struct rank0_only<ProgressBar> : std::true_type {};

}  // namespace typenet::distributed
