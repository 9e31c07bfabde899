/// @file layers/residual.hpp
/// `Residual<Ls...>`: the residual `Add` of a branch to its input, y = x + F(x).
#pragma once

#include <cstddef>
#include <string>

#include "typenet/core/layer.hpp"
#include "typenet/core/sequential.hpp"

namespace typenet {

/// Adds the output of the branch `Sequential<Ls...>` to the branch's input (a skip
/// connection). The branch must keep the shape of its input.
template <class... Ls>
class Residual {
public:
    using branch_type = Sequential<Ls...>;
    static constexpr std::size_t input_rank = branch_type::input_rank;
    static constexpr std::size_t output_rank = branch_type::output_rank;
    static_assert(input_rank == output_rank, "typenet: a Residual branch must keep the rank of its input");

    std::string name() const { return "Residual"; }

    Shape<output_rank> output_shape(const Shape<input_rank>& in) const {
        const auto out = branch_.output_shape(in);
        if (out != in)
            throw shape_error("Residual: the branch maps " + shape_to_string(in) + " to " + shape_to_string(out) +
                              "; an Add needs equal shapes");
        return out;
    }
    void build(const Shape<input_rank>& in, Rng& rng) { branch_.build(in, rng); }

    void forward(const Tensor<input_rank>& x, Tensor<output_rank>& y, const Context& ctx) {
        ensure_shape(fx_, shape_of(y));
        branch_.forward(x, fx_, ctx);
        float* ys = y.data();
        const float* fs = fx_.data();
        const float* xs = x.data();
        for (std::size_t i = 0; i < y.size(); ++i) ys[i] = fs[i] + xs[i];
    }
    void backward(const Tensor<input_rank>& x, const Tensor<output_rank>&, const Tensor<output_rank>& dy,
                  Tensor<input_rank>* dx, const Context& ctx) {
        // y = x + F(x): the branch sees dy (with its own output F(x)); the skip adds dy to dx.
        branch_.backward(x, fx_, dy, dx, ctx);
        if (dx) {
            float* d = dx->data();
            const float* g = dy.data();
            for (std::size_t i = 0; i < dx->size(); ++i) d[i] += g[i];
        }
    }

    template <class F>
    void visit_parameters(F&& f) {
        branch_.visit_parameters(f);
    }
    template <class F>
    void visit_buffers(F&& f) {
        branch_.visit_buffers(f);
    }
    void set_trainable(bool t) { branch_.set_trainable(t); }
    bool is_trainable() const { return branch_.is_trainable(); }

    branch_type& branch() noexcept { return branch_; }

private:
    branch_type branch_;
    Tensor<output_rank> fx_;  ///< the branch's output F(x), reused across batches
};

}  // namespace typenet
