// Data-parallel training on 2 processes against the reference: ONE process (no MPI
// involved: each process also runs it on its own) training the same network on the
// same global batches in the same order. The weights must agree within float
// rounding; a discriminating check shows each comparison would catch a wrong result.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <vector>

#include "mpi_world.hpp"
#include "synthetic_bars.hpp"
#include "test_util.hpp"
#include "typenet/distributed/data_parallel.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;
using namespace typenet::distributed;

namespace {

using test::synthetic_bars;

/// Largest difference over every parameter and buffer of two networks.
template <class Net>
double max_state_diff(Net& a, Net& b) {
    const auto ta = state_tensors(a), tb = state_tensors(b);
    REQUIRE(ta.size() == tb.size());
    double m = 0;
    for (std::size_t k = 0; k < ta.size(); ++k)
        for (std::size_t i = 0; i < ta[k].size; ++i)
            m = std::max(m, std::abs(static_cast<double>(ta[k].value[i]) - tb[k].value[i]));
    return m;
}

struct Counter {
    std::size_t batches = 0, epochs = 0;
    std::vector<double> losses;  // the logs' running loss after each batch
    void on_train_batch_end(std::size_t, Logs& logs) {
        ++batches;
        losses.push_back(logs["loss"]);
    }
    void on_epoch_end(std::size_t, Logs&) { ++epochs; }
};

using ConvNet = Sequential<Conv2D<6, 3, 2>, ReLU, GlobalAveragePooling2D, Dense<3, Softmax>>;

FitOptions quiet(std::size_t epochs, const data::BatchedDataset* validation = nullptr) {
    FitOptions o;
    o.epochs = epochs;
    o.validation = validation;
    o.verbose = 0;
    return o;
}

}  // namespace

TEST_CASE("2 processes train as one process on the global batch (SGD, reshuffled epochs, validation)") {
    const Communicator& comm = test::world();
    const double tol = 2e-5;
    // 72 examples, global batch 16: 4 full batches and one of 8 (4 per process).
    auto make_train = [](std::atomic<int>* reads) { return synthetic_bars(72, reads).shuffle(72, 3).batch(16); };
    auto make_val = [](std::atomic<int>* reads) { return synthetic_bars(30, reads).batch(8); };

    // Reference: one process.
    ConvNet ref;
    ref.build({8, 8, 3}, 5);
    auto ref_model = compile(ref, SGD(0.1f, 0.9f), CategoricalCrossentropy<>(), CategoricalAccuracy());
    std::atomic<int> ref_reads{0};
    const auto ref_train = make_train(&ref_reads);
    const auto ref_val = make_val(&ref_reads);
    Counter ref_counter;
    const History ref_h = ref_model.fit(ref_train, quiet(3, &ref_val), ref_counter);

    // Data-parallel: each process starts from other weights (rank 0's are broadcast).
    ConvNet net;
    net.build({8, 8, 3}, comm.rank() == 0 ? 5 : 1234);
    auto model = compile(net, SGD(0.1f, 0.9f), CategoricalCrossentropy<>(), CategoricalAccuracy());
    std::atomic<int> reads{0};
    const auto train = make_train(&reads);
    const auto val = make_val(&reads);
    Counter counter;
    DataParallel dp(comm);
    const History h = dp.fit(model, train, quiet(3, &val), counter);

    const double diff = max_state_diff(ref, net);
    CHECK(diff < tol);
    CHECK(weights_agree(net, comm));
    CHECK(dp.resyncs() == 0);
    CHECK(train.next_epoch() == 3);  // the handle's epoch count moved on as in Model::fit
    // Every process ran every callback, on the logs averaged over the processes, which
    // are the single process's running figures.
    CHECK(counter.batches == 15);
    CHECK(counter.epochs == 3);
    REQUIRE(counter.losses.size() == ref_counter.losses.size());
    for (std::size_t i = 0; i < counter.losses.size(); ++i)
        CHECK(counter.losses[i] == doctest::Approx(ref_counter.losses[i]).epsilon(1e-5));
    for (const char* k : {"loss", "accuracy", "val_loss", "val_accuracy"})
        for (std::size_t e = 0; e < 3; ++e) CHECK(h[k][e] == doctest::Approx(ref_h[k][e]).epsilon(1e-5));
    // Each process computed only its share of the examples (3 epochs of 36 + 15).
    CHECK(ref_reads == 3 * (72 + 30));
    CHECK(reads == 3 * (36 + 15));
    // Gradients went through the allreduce: one bucket (everything is small) per step.
    CHECK(dp.gradient_stats().steps == 15);
    CHECK(dp.gradient_stats().buckets == 1);
    CHECK(dp.gradient_stats().bytes == (3 * 3 * 3 * 6 + 6 + 6 * 3 + 3) * sizeof(float));

    // Discriminating: one process on batches of 8 (what a process would do without
    // averaging) ends far from the reference.
    ConvNet half;
    half.build({8, 8, 3}, 5);
    auto half_model = compile(half, SGD(0.1f, 0.9f), CategoricalCrossentropy<>(), CategoricalAccuracy());
    half_model.fit(synthetic_bars(72).shuffle(72, 3).batch(8), quiet(3));
    CHECK(max_state_diff(ref, half) > 100 * tol);

    // Evaluation over shards of unequal size: the figures of the whole set.
    const Logs all = ref_model.evaluate(synthetic_bars(31).batch(8));
    const Logs shared = distributed::evaluate(model, synthetic_bars(31).batch(8), comm);
    CHECK(shared["loss"] == doctest::Approx(all["loss"]).epsilon(1e-5));
    CHECK(shared["accuracy"] == doctest::Approx(all["accuracy"]));
}

TEST_CASE("small gradient buckets (parameters reduced in place or packed) give the same training") {
    const Communicator& comm = test::world();
    auto run = [&](ConvNet& net, bool parallel) {
        net.build({8, 8, 3}, 17);
        auto m = compile(net, SGD(0.1f, 0.9f), CategoricalCrossentropy<>(), CategoricalAccuracy());
        const auto train = synthetic_bars(48).shuffle(48, 5).batch(16);
        if (!parallel) return m.fit(train, quiet(2)), std::size_t{0};
        DataParallelOptions o;
        o.bucket_bytes = 100;  // 25 floats: the 162-float kernel alone, conv bias + dense kernel, dense bias
        DataParallel dp(comm, o);
        dp.fit(m, train, quiet(2));
        return dp.gradient_stats().buckets;
    };
    ConvNet ref, net;
    run(ref, false);
    CHECK(run(net, true) == 3);
    CHECK(max_state_diff(ref, net) < 2e-5);
}

TEST_CASE("synchronised batch norm on 2 processes = batch norm on the global batch in one process") {
    const Communicator& comm = test::world();
    const double tol = 2e-5;
    // BatchNormalization (gamma, beta) and the fused convolution + batch norm
    // (BatchNorm/gamma, BatchNorm/beta) both train with batch statistics.
    using Net = Sequential<Conv2DBN<6, 3, 1>, GlobalAveragePooling2D, BatchNormalization, Dense<3, Softmax>>;
    auto make_train = [] { return synthetic_bars(64).shuffle(64, 9).batch(16); };
    auto run_reference = [&](Net& net) {
        net.build({8, 8, 3}, 21);
        auto m = compile(net, SGD(0.05f, 0.9f), CategoricalCrossentropy<>(), CategoricalAccuracy());
        m.fit(make_train(), quiet(2));
    };
    Net ref;
    run_reference(ref);

    auto run_parallel = [&](Net& net, bool sync) {
        net.build({8, 8, 3}, 21);
        auto m = compile(net, SGD(0.05f, 0.9f), CategoricalCrossentropy<>(), CategoricalAccuracy());
        DataParallelOptions o;
        o.sync_batchnorm = sync;
        DataParallel dp(comm, o);
        dp.fit(m, make_train(), quiet(2));
        CHECK(typenet::detail::batchnorm_sync() == nullptr);  // the hook is removed after fit
    };
    Net synced;
    run_parallel(synced, true);
    CHECK(max_state_diff(ref, synced) < tol);  // weights and moving statistics
    CHECK(weights_agree(synced, comm));

    // Discriminating: per-process batch norm (statistics of 8 examples) trains otherwise.
    Net local;
    run_parallel(local, false);
    CHECK(max_state_diff(ref, local) > 100 * tol);
    CHECK(weights_agree(local, comm));  // moving statistics averaged at each epoch's end
}

TEST_CASE("frozen-feature cache: each process extracts half the features; training as in one process") {
    const Communicator& comm = test::world();
    using Backbone = Sequential<Conv2D<6, 3, 2>, ReLU, GlobalAveragePooling2D>;
    using Net = Sequential<Backbone, Dense<3, Softmax>>;
    auto run = [&](Net& net, bool parallel, std::atomic<int>& reads) {
        net.build({8, 8, 3}, 33);
        net.layer<0>().set_trainable(false);
        auto m = compile(net, Adam(0.02f), CategoricalCrossentropy<>(), CategoricalAccuracy());
        const auto train = synthetic_bars(64, &reads).shuffle(64, 4).batch(16);
        std::ostringstream out;
        FitOptions o = quiet(4);
        o.verbose = 2;
        o.out = &out;
        if (parallel) {
            distributed::fit(m, train, o, comm);
            CHECK(m.params().cached_features);
            CHECK(m.feature_cache()->size() == 64);  // every example, whatever the epoch's shuffle
            if (comm.is_root()) {
                CHECK(out.str().find("extracted by 2 processes") != std::string::npos);
                CHECK(out.str().find("Epoch 4/4") != std::string::npos);
            } else {
                CHECK(out.str().empty());  // only rank 0 prints
            }
        } else {
            m.fit(train, o);
        }
    };
    std::atomic<int> ref_reads{0}, reads{0};
    Net ref, net;
    run(ref, false, ref_reads);
    run(net, true, reads);
    CHECK(ref_reads == 64);
    CHECK(reads == 32);  // this process decoded only its half, once
    CHECK(max_state_diff(ref, net) < 2e-5);
}

TEST_CASE("callbacks: files and printing on rank 0 only, the others on every process") {
    const Communicator& comm = test::world();
    ConvNet net;
    net.build({8, 8, 3}, 8);
    auto model = compile(net, Adam(0.01f), CategoricalCrossentropy<>(), CategoricalAccuracy());
    const auto dir = std::filesystem::temp_directory_path() / "typenet_test_distributed";
    if (comm.is_root()) {
        std::filesystem::create_directories(dir);
        std::filesystem::remove(dir / "history.csv");
    }
    comm.barrier();
    // Rank 1 writes its CSV where rank 0 does not: only rank 0's may appear.
    CSVLogger csv(dir / (comm.is_root() ? "history.csv" : "history_rank1.csv"));
    Counter everywhere, only_root;
    auto wrapped = on_rank0(comm, only_root);
    LearningRateScheduler lrs(StepDecay{0.01f, 0.5f, 3});
    distributed::fit(model, synthetic_bars(32).batch(8), quiet(2), comm, everywhere, wrapped, csv, lrs);
    CHECK(everywhere.batches == 8);
    CHECK(only_root.batches == (comm.is_root() ? 8u : 0u));
    CHECK(model.optimizer().learning_rate() == doctest::Approx(0.01f * 0.25f));  // steps 6, 7: 2 decays
    comm.barrier();
    CHECK(std::filesystem::exists(dir / "history.csv"));
    CHECK_FALSE(std::filesystem::exists(dir / "history_rank1.csv"));
    comm.barrier();
    if (comm.is_root()) std::filesystem::remove_all(dir);
}

TEST_CASE("the processes must agree on the data and the batch must split evenly") {
    const Communicator& comm = test::world();
    ConvNet net;
    net.build({8, 8, 3}, 8);
    auto model = compile(net, Adam(0.01f), CategoricalCrossentropy<>(), CategoricalAccuracy());
    // Different data on the processes: refused everywhere (nobody waits forever).
    CHECK_THROWS_AS(distributed::fit(model, synthetic_bars(comm.is_root() ? 32 : 40).batch(8), quiet(1), comm), config_error);
    // Other layers frozen on one process: the gradients would not line up.
    net.layer<0>().set_trainable(comm.rank() != 0);
    CHECK_THROWS_WITH_AS(distributed::fit(model, synthetic_bars(32).batch(8), quiet(1), comm),
                         doctest::Contains("trainable"), config_error);
    net.layer<0>().set_trainable(true);
    // A global batch of 7 does not split over 2 processes.
    CHECK_THROWS_WITH_AS(distributed::fit(model, synthetic_bars(32).batch(7), quiet(1), comm),
                         doctest::Contains("multiple of the number of ranks"), config_error);
}
