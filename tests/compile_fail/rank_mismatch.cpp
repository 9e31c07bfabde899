// Dense takes (batch, features); a rank-4 input needs Flatten or pooling first.
// EXPECT: typenet: layer input rank mismatch
#include "typenet/typenet.hpp"

struct Image4 {  // a layer producing rank-4 output
    static constexpr std::size_t input_rank = 2, output_rank = 4;
    typenet::Shape<4> output_shape(const typenet::Shape<2>& s) const { return {s[0], 1, 1, s[1]}; }
    void forward(const typenet::Tensor<2>&, typenet::Tensor<4>&, const typenet::Context&) {}
    void backward(const typenet::Tensor<2>&, const typenet::Tensor<4>&, const typenet::Tensor<4>&,
                  typenet::Tensor<2>*, const typenet::Context&) {}
};

int main() {
    typenet::Sequential<Image4, typenet::Dense<2>> model;
    (void)model;
}
