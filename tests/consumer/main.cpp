// Out-of-tree consumer: builds against the installed typenet and trains a step.
#include <typenet/typenet.hpp>

#include <cstdio>

int main() {
    using namespace typenet;
    Sequential<Dense<8, ReLU>, Dense<2, Softmax>> model;
    model.build({3});
    Tensor<2> x = zeros<2>({4, 3}), y = zeros<2>({4, 2});
    for (std::size_t i = 0; i < 4; ++i) {
        x(i, i % 3) = 1.0f;
        y(i, i % 2) = 1.0f;
    }
    Adam opt;
    CategoricalCrossentropy<> loss;
    const float l = train_step(model, loss, opt, x, y);
    std::printf("consumer: typenet %s, loss %.4f\n", TYPENET_VERSION_STRING, l);
    return l > 0.0f ? 0 : 1;
}
