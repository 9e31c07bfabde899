// A callback whose only method is misspelt would be silently ignored: refused instead.
// EXPECT: typenet: fit: a callback argument has none of on_train_begin
#include "typenet/typenet.hpp"

struct Typo {
    void on_epoch_ended(std::size_t, typenet::Logs&) {}
};

int main() {
    using namespace typenet;
    Sequential<Dense<3, Softmax>> net;
    auto model = compile(net, Adam(), CategoricalCrossentropy<>(), CategoricalAccuracy());
    data::BatchedDataset* train = nullptr;
    Typo t;
    model.fit(*train, {}, t);
}
