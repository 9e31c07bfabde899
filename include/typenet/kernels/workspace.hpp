/// @file kernels/workspace.hpp
/// Grow-only, aligned scratch buffers for the kernels (packing buffers, im2col
/// rows, per-thread partial sums).
///
/// A kernel never allocates in its hot loop: it asks for a buffer once per call,
/// and the buffer only reallocates when a larger one is needed, so after the first
/// batch of a given shape no kernel allocates at all. Each thread has its own set of
/// buffers (`thread_local`), one per `Slot`, so nested kernels (conv2d calling gemm)
/// and concurrent callers never share scratch memory by accident.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

#include "typenet/config.hpp"

namespace typenet::kernels {

/// A grow-only buffer of floats aligned to `TYPENET_ALIGNMENT` bytes. Contents are
/// not preserved when it grows.
class AlignedBuffer {
public:
    AlignedBuffer() = default;
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    AlignedBuffer(AlignedBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
    AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
        if (this != &o) {
            release();
            p_ = o.p_; n_ = o.n_;
            o.p_ = nullptr; o.n_ = 0;
        }
        return *this;
    }
    ~AlignedBuffer() { release(); }

    /// At least `n` floats (uninitialised), reallocating only when the buffer is smaller.
    float* get(std::size_t n) {
        if (n > n_) {
            release();
            // Round up to whole cache lines (and allocate at least one).
            const std::size_t per = TYPENET_ALIGNMENT / sizeof(float);
            const std::size_t cap = ((n + per - 1) / per) * per;
            p_ = static_cast<float*>(::operator new(cap * sizeof(float), std::align_val_t(TYPENET_ALIGNMENT)));
            n_ = cap;
        }
        return p_;
    }

    /// The storage (nullptr before the first `get`).
    float* data() noexcept { return p_; }
    /// The storage (nullptr before the first `get`).
    const float* data() const noexcept { return p_; }

    /// Current capacity in floats.
    std::size_t capacity() const noexcept { return n_; }

private:
    void release() noexcept {
        if (p_) ::operator delete(p_, std::align_val_t(TYPENET_ALIGNMENT));
        p_ = nullptr;
        n_ = 0;
    }
    float* p_ = nullptr;
    std::size_t n_ = 0;
};

/// Uses of the per-thread scratch buffers; each use has its own buffer.
enum class Slot : int {
    pack_b = 0,     ///< packed right-hand matrix of a gemm (shared by the team, owned by the caller)
    partial,        ///< per-chunk partial results before a fixed-order reduction
    im2col,         ///< im2col rows of conv2d (per thread)
    conv_tmp,       ///< conv2d intermediate (col gradients, packed weights)
    fused,          ///< inverted-residual band buffers (per thread)
    fused_pack,     ///< packed weights of a fused inverted-residual block
    dw_tmp,         ///< depthwise: flipped weights, per-chunk weight-gradient partials
    gemm_t,         ///< gemm: transposed product before its epilogue
    stage,          ///< pointwise / depthwise backward: rows of dX and their batch-norm sums;
                    ///< depthwise forward: rows of a streamed output
    count_
};

/// At least `n` zeros, 64-byte aligned, owned by this thread (never write to them).
/// Kernels point at it for rows that lie in the padding.
inline const float* zero_floats(std::size_t n) {
    thread_local AlignedBuffer buffer;
    thread_local std::size_t zeroed = 0;
    if (n > zeroed) {
        float* p = buffer.get(n);
        for (std::size_t i = 0; i < buffer.capacity(); ++i) p[i] = 0.0f;
        zeroed = buffer.capacity();
    }
    return buffer.data();
}

/// This thread's scratch buffer for `slot`: at least `n` floats, 64-byte aligned.
inline float* scratch(Slot slot, std::size_t n) {
    thread_local AlignedBuffer buffers[static_cast<int>(Slot::count_)];
    return buffers[static_cast<int>(slot)].get(n);
}

}  // namespace typenet::kernels
