#include <doctest/doctest.h>

#include "typenet/typenet.hpp"

using namespace typenet;

namespace {
// y = 3x, with a deliberately wrong backward (2x): the checker must catch it.
struct WrongTriple {
    static constexpr std::size_t input_rank = 2, output_rank = 2;
    Shape<2> output_shape(const Shape<2>& s) const { return s; }
    void forward(const Tensor<2>& x, Tensor<2>& y, const Context&) { y = 3.0f * x; }
    void backward(const Tensor<2>&, const Tensor<2>&, const Tensor<2>& dy, Tensor<2>* dx, const Context&) {
        if (dx) *dx = 2.0f * dy;
    }
};
struct RightTriple : WrongTriple {
    void backward(const Tensor<2>&, const Tensor<2>&, const Tensor<2>& dy, Tensor<2>* dx, const Context&) {
        if (dx) *dx = 3.0f * dy;
    }
};
// A parameter whose gradient is off by 1%: still caught (tolerance 1e-3).
struct SlightlyWrongScale {
    static constexpr std::size_t input_rank = 2, output_rank = 2;
    Tensor<1> a = xt::xtensor<float, 1>({1.5f, -0.5f}), da = zeros<1>({2});
    Shape<2> output_shape(const Shape<2>& s) const { return s; }
    void forward(const Tensor<2>& x, Tensor<2>& y, const Context&) {
        for (std::size_t i = 0; i < x.shape()[0]; ++i)
            for (std::size_t j = 0; j < 2; ++j) y(i, j) = a(j) * x(i, j);
    }
    void backward(const Tensor<2>& x, const Tensor<2>&, const Tensor<2>& dy, Tensor<2>* dx, const Context&) {
        da.fill(0);
        for (std::size_t i = 0; i < x.shape()[0]; ++i)
            for (std::size_t j = 0; j < 2; ++j) {
                da(j) += 1.01f * dy(i, j) * x(i, j);
                if (dx) (*dx)(i, j) = a(j) * dy(i, j);
            }
    }
    template <class F>
    void visit_parameters(F&& f) {
        ParamRef p = param_ref("a", a, da);
        f(p);
    }
};
}  // namespace

TEST_CASE("gradient checker accepts a right backward and rejects wrong ones") {
    Rng rng(1);
    Tensor<2> x = random_tensor<2>({3, 2}, rng);
    RightTriple right;
    auto ok = check_layer_gradients(right, x);
    CHECK_MESSAGE(ok.ok, ok.report());
    CHECK(ok.max_error < 1e-4);

    WrongTriple wrong;
    auto bad = check_layer_gradients(wrong, x);
    CHECK_FALSE(bad.ok);
    CHECK(bad.max_error > 0.3);
    CHECK(bad.report().find("FAILED") != std::string::npos);

    SlightlyWrongScale s;
    auto slight = check_layer_gradients(s, x);
    CHECK_FALSE(slight.ok);
    CHECK(slight.report().find("a[") != std::string::npos);
}
