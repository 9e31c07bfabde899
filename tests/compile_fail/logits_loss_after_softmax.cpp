// The reference tutorial's bug: a from-logits loss after a softmax output.
// EXPECT: typenet: the loss expects logits \(FromLogits = true\) but the model ends in Softmax
#include "typenet/typenet.hpp"

int main() {
    using namespace typenet;
    Sequential<Dense<4, ReLU>, Dense<3, Softmax>> model;
    CategoricalCrossentropy<true> loss;
    Adam opt;
    Tensor<2> x = zeros<2>({1, 2}), y = zeros<2>({1, 3});
    train_step(model, loss, opt, x, y);
}
