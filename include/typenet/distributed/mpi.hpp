/// @file distributed/mpi.hpp
/// MPI for data-parallel training: `Environment` (MPI_Init / MPI_Finalize, RAII) and
/// `Communicator` (rank, size, allreduce, broadcast, allgather, barrier). The only
/// part of typenet, with the rest of `typenet/distributed/`, that needs `<mpi.h>`.
///
/// ```cpp
/// int main(int argc, char** argv) {
///     typenet::distributed::Environment mpi(argc, argv);  // MPI_Init ... MPI_Finalize
///     typenet::distributed::Communicator comm;             // a private copy of MPI_COMM_WORLD
///     std::vector<float> g = ...;
///     comm.allreduce_average(g.data(), g.size());          // the mean over the processes
/// }
/// ```
///
/// MPI errors never abort silently: the communicator uses MPI_ERRORS_RETURN and every
/// failed call throws `mpi_error` (a `typenet::error`) with the call's name and MPI's
/// error string. Only the thread that created the environment may call MPI
/// (MPI_THREAD_FUNNELED: OpenMP workers and prefetch threads never do).
#pragma once

// The C API only: without these, <mpi.h> also pulls in the deprecated MPI C++ bindings.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "typenet/core/error.hpp"

namespace typenet::distributed {

/// A failed MPI call: `what()` names the call and gives MPI's error string.
class mpi_error : public error {
public:
    mpi_error(const std::string& call, int code) : error(call + ": " + message(code)), code_(code) {}
    explicit mpi_error(const std::string& what) : error(what) {}
    /// MPI's error code (MPI_SUCCESS when the error is typenet's own).
    int code() const noexcept { return code_; }

    /// MPI's text for an error code.
    static std::string message(int code) {
        char text[MPI_MAX_ERROR_STRING];
        int len = 0;
        if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
        return std::string(text, static_cast<std::size_t>(len)) + " (MPI error " + std::to_string(code) + ")";
    }

private:
    int code_ = MPI_SUCCESS;
};

namespace detail {

/// Throw `mpi_error` unless `code` is MPI_SUCCESS.
inline void check_mpi(int code, const char* call) {
    if (code != MPI_SUCCESS) throw mpi_error(call, code);
}

/// The MPI datatype of a C++ type.
template <class T>
MPI_Datatype mpi_type() {
    if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
    else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
    else if constexpr (std::is_same_v<T, std::int32_t>) return MPI_INT32_T;
    else if constexpr (std::is_same_v<T, std::int64_t>) return MPI_INT64_T;
    else if constexpr (std::is_same_v<T, std::uint64_t>) return MPI_UINT64_T;
    else if constexpr (std::is_same_v<T, char>) return MPI_CHAR;
    else if constexpr (std::is_same_v<T, unsigned char> || std::is_same_v<T, std::byte>) return MPI_BYTE;
    else static_assert(sizeof(T) == 0, "typenet: no MPI datatype for this type");
}

/// MPI counts are `int`: large buffers go in pieces of this many elements.
inline constexpr std::size_t max_mpi_count = std::size_t{1} << 30;

}  // namespace detail

/// Initialises MPI on construction and finalises it on destruction (RAII). Create one,
/// in `main`, before any `Communicator`, and let it outlive them. When MPI is already
/// initialised (by the program or another library) it leaves initialisation and
/// finalisation to whoever did it.
class Environment {
public:
    /// MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED).
    Environment(int& argc, char**& argv) { init(&argc, &argv); }
    /// MPI_Init_thread without the command line.
    Environment() { init(nullptr, nullptr); }
    ~Environment() {
        if (!owner_) return;
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
    }
    Environment(const Environment&) = delete;
    Environment& operator=(const Environment&) = delete;

    /// Has MPI been initialised (and not finalised)?
    static bool active() noexcept {
        int initialized = 0, finalized = 0;
        MPI_Initialized(&initialized);
        MPI_Finalized(&finalized);
        return initialized && !finalized;
    }
    /// The thread support MPI granted.
    int thread_level() const noexcept { return provided_; }

private:
    void init(int* argc, char*** argv) {
        int initialized = 0;
        detail::check_mpi(MPI_Initialized(&initialized), "MPI_Initialized");
        if (initialized) {
            MPI_Query_thread(&provided_);
            return;
        }
        detail::check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided_), "MPI_Init_thread");
        owner_ = true;
    }
    bool owner_ = false;
    int provided_ = MPI_THREAD_SINGLE;
};

/// Element-wise reductions of `Communicator::allreduce`.
enum class ReduceOp { sum, min, max };

/// A group of processes (a duplicate of MPI_COMM_WORLD by default, so typenet's
/// messages never mix with the program's own). Every collective must be called by all
/// processes of the group, in the same order, with the same counts.
class Communicator {
public:
    /// All processes of the job (a private duplicate of MPI_COMM_WORLD).
    /// @throws mpi_error when MPI is not initialised (create an `Environment` first).
    Communicator() : Communicator(MPI_COMM_WORLD) {}
    /// A duplicate of `comm` (errors returned, not fatal).
    explicit Communicator(MPI_Comm comm) {
        if (!Environment::active())
            throw mpi_error("typenet::distributed::Communicator: MPI is not initialised (create a "
                            "typenet::distributed::Environment in main first)");
        detail::check_mpi(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
        detail::check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
        detail::check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
        detail::check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    }
    ~Communicator() {
        if (comm_ != MPI_COMM_NULL && Environment::active()) MPI_Comm_free(&comm_);
    }
    Communicator(const Communicator&) = delete;
    Communicator& operator=(const Communicator&) = delete;

    /// This process's number, 0 .. size() - 1.
    int rank() const noexcept { return rank_; }
    /// Number of processes.
    int size() const noexcept { return size_; }
    /// Is this rank 0 (the one that prints and writes files)?
    bool is_root() const noexcept { return rank_ == 0; }
    /// The MPI communicator, for calls of your own.
    MPI_Comm native() const noexcept { return comm_; }

    /// Number of processes of this communicator on this machine (shared memory), e.g.
    /// to give each `cores / node_size()` threads. Collective.
    int node_size() const {
        MPI_Comm node = MPI_COMM_NULL;
        detail::check_mpi(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
                          "MPI_Comm_split_type");
        int n = 1;
        const int rc = MPI_Comm_size(node, &n);
        MPI_Comm_free(&node);
        detail::check_mpi(rc, "MPI_Comm_size");
        return n;
    }

    /// Replace `data[0..n)` on every process by its element-wise reduction (sum, min or
    /// max) over the processes. Supported types: float, double, int32, int64, uint64.
    template <class T>
    void allreduce(T* data, std::size_t n, ReduceOp op = ReduceOp::sum) const {
        const MPI_Op mop = op == ReduceOp::sum ? MPI_SUM : op == ReduceOp::min ? MPI_MIN : MPI_MAX;
        for (std::size_t at = 0; at < n; at += detail::max_mpi_count) {
            const int count = static_cast<int>(std::min(detail::max_mpi_count, n - at));
            detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, data + at, count, detail::mpi_type<T>(), mop, comm_),
                              "MPI_Allreduce");
        }
    }
    /// Sum over the processes, in place.
    void allreduce_sum(float* data, std::size_t n) const { allreduce(data, n); }
    /// Sum over the processes, in place.
    void allreduce_sum(double* data, std::size_t n) const { allreduce(data, n); }
    /// Mean over the processes, in place (the sum, divided by size()).
    void allreduce_average(float* data, std::size_t n) const {
        allreduce(data, n);
        const float inv = 1.0f / static_cast<float>(size_);
        for (std::size_t i = 0; i < n; ++i) data[i] *= inv;
    }
    /// Mean over the processes, in place (the sum, divided by size()).
    void allreduce_average(double* data, std::size_t n) const {
        allreduce(data, n);
        for (std::size_t i = 0; i < n; ++i) data[i] /= static_cast<double>(size_);
    }
    /// The reduction of one value.
    template <class T>
    T allreduce_value(T value, ReduceOp op = ReduceOp::sum) const {
        allreduce(&value, 1, op);
        return value;
    }

    /// Copy `data[0..n)` of rank `root` to every process.
    template <class T>
    void broadcast(T* data, std::size_t n, int root = 0) const {
        for (std::size_t at = 0; at < n; at += detail::max_mpi_count) {
            const int count = static_cast<int>(std::min(detail::max_mpi_count, n - at));
            detail::check_mpi(MPI_Bcast(data + at, count, detail::mpi_type<T>(), root, comm_), "MPI_Bcast");
        }
    }
    /// Copy rank `root`'s string to every process.
    void broadcast(std::string& s, int root = 0) const {
        std::uint64_t n = s.size();
        broadcast(&n, 1, root);
        s.resize(static_cast<std::size_t>(n));
        broadcast(s.data(), s.size(), root);
    }

    /// Every process's `data[0..n)`, concatenated in rank order, on every process (n
    /// may differ between processes). `counts`, when given, receives each rank's n.
    template <class T>
    std::vector<T> allgather(const T* data, std::size_t n, std::vector<std::size_t>* counts = nullptr) const {
        std::vector<std::uint64_t> ns(static_cast<std::size_t>(size_));
        const std::uint64_t mine = n;
        detail::check_mpi(MPI_Allgather(&mine, 1, MPI_UINT64_T, ns.data(), 1, MPI_UINT64_T, comm_), "MPI_Allgather");
        std::uint64_t total = 0;
        for (auto k : ns) total += k;
        if (total > static_cast<std::uint64_t>(INT_MAX))
            throw mpi_error("Communicator::allgather: " + std::to_string(total) +
                            " elements in all, more than one MPI call can gather");
        std::vector<int> rc(ns.size()), displ(ns.size());
        int at = 0;
        for (std::size_t r = 0; r < ns.size(); ++r) {
            rc[r] = static_cast<int>(ns[r]);
            displ[r] = at;
            at += rc[r];
        }
        std::vector<T> out(static_cast<std::size_t>(total));
        detail::check_mpi(MPI_Allgatherv(data, static_cast<int>(n), detail::mpi_type<T>(), out.data(), rc.data(),
                                         displ.data(), detail::mpi_type<T>(), comm_),
                          "MPI_Allgatherv");
        if (counts) counts->assign(ns.begin(), ns.end());
        return out;
    }

    /// Wait until every process has called it.
    void barrier() const { detail::check_mpi(MPI_Barrier(comm_), "MPI_Barrier"); }

    /// End the whole job (every process) with `code`: what to do when one process fails
    /// while the others may be waiting for it in a collective.
    [[noreturn]] void abort(int code = 1) const {
        MPI_Abort(comm_, code);
        std::abort();
    }

private:
    MPI_Comm comm_ = MPI_COMM_NULL;
    int rank_ = 0, size_ = 1;
};

}  // namespace typenet::distributed
