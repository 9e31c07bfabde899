/// @file distributed/weights.hpp
/// Keeping the processes' copies of a model identical: broadcast rank 0's weights,
/// average the batch-norm moving statistics, and check that the copies agree.
///
/// Data-parallel training starts every process from rank 0's weights (whatever each
/// process initialised or loaded); from then on every process applies the same
/// averaged gradients, so the trainable weights stay identical. Batch-norm moving
/// statistics are buffers, not gradients: without synchronised batch norm each
/// process updates them from its own examples, and `average_buffers` makes them equal
/// again (their mean over the processes, computed in double precision so that values
/// already equal everywhere come back bit for bit: a frozen backbone's buffers never
/// change, and its feature-cache fingerprint stays valid).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/core/parameter.hpp"
#include "typenet/distributed/mpi.hpp"

namespace typenet::distributed {

/// Copy rank `root`'s parameters and buffers (every persistent tensor) to all
/// processes. @throws mismatch_error when a process's model has other tensors.
template <class Net>
void broadcast_weights(Net& net, const Communicator& comm, int root = 0) {
    std::vector<BufferRef> ts = state_tensors(net);
    // The layouts must agree before any data moves (else the broadcast would mix tensors).
    std::uint64_t layout = 1469598103934665603ull;
    for (const BufferRef& t : ts) {
        layout = (layout ^ t.size) * 1099511628211ull;
        for (char c : t.name) layout = (layout ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    }
    const std::uint64_t lo = comm.allreduce_value(layout, ReduceOp::min), hi = comm.allreduce_value(layout, ReduceOp::max);
    if (lo != hi)
        throw mismatch_error("rank " + std::to_string(comm.rank()),
                             "the processes' models have different tensors (names or sizes): data-parallel training "
                             "needs the same network on every process");
    std::size_t total = 0;
    for (const BufferRef& t : ts) total += t.size;
    std::vector<float> all(total);
    std::size_t at = 0;
    if (comm.rank() == root)
        for (const BufferRef& t : ts) {
            std::memcpy(all.data() + at, t.value, t.size * sizeof(float));
            at += t.size;
        }
    comm.broadcast(all.data(), total, root);
    at = 0;
    for (const BufferRef& t : ts) {
        std::memcpy(t.value, all.data() + at, t.size * sizeof(float));
        at += t.size;
    }
    weights_changed(net);
}

/// Replace every buffer (batch-norm moving statistics) by its mean over the processes,
/// in double precision (values equal on every process stay bit-identical).
template <class Net>
void average_buffers(Net& net, const Communicator& comm) {
    if constexpr (HasBuffers<Net>) {
        std::vector<BufferRef> bs;
        net.visit_buffers([&](BufferRef& b) { bs.push_back(b); });
        std::size_t total = 0;
        for (const BufferRef& b : bs) total += b.size;
        if (total == 0 || comm.size() == 1) return;
        std::vector<double> sum(total);
        std::size_t at = 0;
        for (const BufferRef& b : bs)
            for (std::size_t i = 0; i < b.size; ++i) sum[at++] = b.value[i];
        comm.allreduce(sum.data(), total);
        at = 0;
        const double p = static_cast<double>(comm.size());
        for (const BufferRef& b : bs)
            for (std::size_t i = 0; i < b.size; ++i) b.value[i] = static_cast<float>(sum[at++] / p);
        weights_changed(net);
    }
}

/// A checksum of every parameter and buffer (FNV-1a over the float bits).
template <class Net>
std::uint64_t weights_fingerprint(Net& net) {
    std::uint64_t h = 1469598103934665603ull;
    for (const BufferRef& t : state_tensors(net))
        for (std::size_t i = 0; i < t.size; ++i) {
            std::uint32_t bits;
            std::memcpy(&bits, t.value + i, 4);
            h = (h ^ bits) * 1099511628211ull;
        }
    return h;
}

/// Do all processes hold bit-identical weights? (Collective; the same answer everywhere.)
template <class Net>
bool weights_agree(Net& net, const Communicator& comm) {
    const std::uint64_t h = weights_fingerprint(net);
    return comm.allreduce_value(h, ReduceOp::min) == comm.allreduce_value(h, ReduceOp::max);
}

}  // namespace typenet::distributed
