/// @file kernels/row_consumer.hpp
/// A consumer of rows of a tensor that a kernel produces block by block and does not
/// store: the hand-off between two fused kernels of a training step (the depthwise
/// backward pushes rows of its input gradient, `BatchNormPointwiseBackward` consumes them
/// as the expansion's backward).
#pragma once

#include <cstddef>

namespace typenet::kernels {

/// Receives rows of a produced tensor. The producer calls `consume` from its worker
/// threads; every row is handed over exactly once, by one fixed chunk of the producer's
/// work (`chunk` < the chunk count the producer announced), whatever the thread count.
class RowConsumer {
public:
    /// Rows [r0, r0 + n) (each `c` floats, contiguous) at `rows`, made by chunk `chunk`
    /// on worker `thread` (< `max_threads()` when the producer started). The consumer may
    /// overwrite them.
    virtual void consume(std::size_t chunk, int thread, std::size_t r0, std::size_t n, float* rows) = 0;

protected:
    ~RowConsumer() = default;
};

}  // namespace typenet::kernels
