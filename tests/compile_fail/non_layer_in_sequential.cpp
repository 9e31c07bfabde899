// A type that is not a layer, in a Sequential: one readable message.
// EXPECT: typenet: this type is not a Layer: it lacks .*forward
#include "typenet/typenet.hpp"

struct NotALayer {
    static constexpr std::size_t input_rank = 2, output_rank = 2;
    typenet::Shape<2> output_shape(const typenet::Shape<2>& s) const { return s; }
    // no forward, no backward
};

int main() {
    typenet::Sequential<typenet::Dense<4>, NotALayer, typenet::Dense<2>> model;
    (void)model;
}
