#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "synthetic_bars.hpp"
#include "test_util.hpp"
#include "typenet/data/augment.hpp"
#include "typenet/io/model_file.hpp"
#include "typenet/train/model.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;
namespace fs = std::filesystem;

namespace {
using Backbone = Sequential<Conv2D<6, 3, 2>, ReLU, GlobalAveragePooling2D>;
using Net = Sequential<Backbone, Dropout<0.5f>, Dense<3, Softmax>>;

using test::synthetic_bars;

struct BatchStats {  // the reference workflow's callback
    std::vector<double> losses, accuracies;
    template <class M>
    void on_train_batch_end(std::size_t, Logs& logs, M& model) {
        losses.push_back(logs["loss"]);
        accuracies.push_back(logs["accuracy"]);
        model.reset_metrics();
    }
};

struct Counter {
    std::size_t epochs = 0, batches = 0, begins = 0, ends = 0;
    void on_train_begin(Logs&) { ++begins; }
    void on_train_end(Logs&) { ++ends; }
    void on_epoch_end(std::size_t, Logs&) { ++epochs; }
    void on_train_batch_begin(std::size_t, Logs&) { ++batches; }
};
}  // namespace

TEST_CASE("fit / evaluate / predict on a small problem; callbacks are called") {
    Net net;
    net.build({8, 8, 3}, 5);
    auto model = compile(net, Adam(0.05f), CategoricalCrossentropy<>(), CategoricalAccuracy());
    auto train = synthetic_bars(96).shuffle(96, 1).batch(16);
    auto val = synthetic_bars(30).batch(16);
    Counter counter;
    BatchStats stats;
    std::ostringstream out;
    FitOptions o;
    o.epochs = 8;
    o.validation = &val;
    o.out = &out;
    o.verbose = 2;
    o.feature_cache = false;
    const History h = model.fit(train, o, counter, stats);
    CHECK(counter.begins == 1);
    CHECK(counter.ends == 1);
    CHECK(counter.epochs == 8);
    CHECK(counter.batches == 8 * 6);
    CHECK(stats.losses.size() == 48);
    CHECK(h.epochs().size() == 8);
    CHECK(h["val_accuracy"].back() > 0.9);
    CHECK(out.str().find("Epoch 8/8") != std::string::npos);
    CHECK(out.str().find("val_accuracy") != std::string::npos);

    const Logs test = model.evaluate(val);
    CHECK(test["accuracy"] == doctest::Approx(h["val_accuracy"].back()));
    const Tensor<2> p = model.predict(val);
    CHECK(p.shape()[0] == 30);
    CategoricalAccuracy acc;
    Tensor<2> y = zeros<2>({30, 3});
    for (std::size_t i = 0; i < 30; ++i) y(i, i % 3) = 1;
    acc.update(p, y);
    CHECK(acc.result() == doctest::Approx(test["accuracy"]));
}

TEST_CASE("frozen-feature cache: same training as without it, within float tolerance") {
    auto run = [](bool cache, std::ostream& out) {
        Net net;
        net.build({8, 8, 3}, 11);
        net.layer<0>().set_trainable(false);
        auto model = compile(net, Adam(0.02f), CategoricalCrossentropy<>(), CategoricalAccuracy());
        auto train = synthetic_bars(90).shuffle(90, 3).batch(16);
        auto val = synthetic_bars(20).batch(8);
        FitOptions o;
        o.epochs = 4;
        o.validation = &val;
        o.out = &out;
        o.verbose = 0;
        o.feature_cache = cache;
        History h = model.fit(train, o);
        CHECK(model.params().cached_features == cache);
        return std::pair{h, Tensor<2>(net.layer<2>().kernel())};
    };
    std::ostringstream o1, o2;
    auto [h1, w1] = run(true, o1);
    auto [h2, w2] = run(false, o2);
    CHECK(test::max_abs_diff(w1, w2) < 1e-4);
    for (std::size_t e = 0; e < 4; ++e) {
        CHECK(h1["loss"][e] == doctest::Approx(h2["loss"][e]).epsilon(1e-4));
        CHECK(h1["val_loss"][e] == doctest::Approx(h2["val_loss"][e]).epsilon(1e-4));
    }
}

TEST_CASE("frozen-feature cache turns itself off, and says why") {
    Net net;
    net.build({8, 8, 3});
    auto model = compile(net, Adam(), CategoricalCrossentropy<>(), CategoricalAccuracy());
    std::ostringstream out;
    FitOptions o;
    o.out = &out;
    o.verbose = 1;
    auto train = synthetic_bars(16).batch(8);
    model.fit(train, o);  // first layer trainable
    CHECK(out.str().find("feature cache off: the first layer is trainable") != std::string::npos);
    net.layer<0>().set_trainable(false);
    out.str("");
    auto augmented = synthetic_bars(16).map(data::RandomFlipLeftRight{}).batch(8);
    model.fit(augmented, o);
    CHECK(out.str().find("random transforms") != std::string::npos);
    CHECK_FALSE(model.params().cached_features);
    out.str("");
    auto cached_aug = synthetic_bars(16).map(data::RandomFlipLeftRight{}).cache().batch(8);
    model.fit(cached_aug, o);  // the cache freezes the augmentation
    CHECK(model.params().cached_features);
}

TEST_CASE("EarlyStopping, CSVLogger and ModelCheckpoint") {
    Net net;
    net.build({8, 8, 3}, 2);
    auto model = compile(net, SGD(0.0f), CategoricalCrossentropy<>(), CategoricalAccuracy());  // lr 0: no progress
    auto train = synthetic_bars(32).batch(16);
    auto val = synthetic_bars(16).batch(16);
    const fs::path dir = fs::temp_directory_path() / ("typenet_cb_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    EarlyStopping stop("val_loss", 1);
    CSVLogger csv(dir / "history.csv");
    ModelCheckpoint ckpt(dir / "model-{epoch}.tnet");
    FitOptions o;
    o.epochs = 10;
    o.validation = &val;
    o.verbose = 0;
    const History h = model.fit(train, o, stop, csv, ckpt);
    CHECK(h.epochs().size() == 3);  // best at epoch 0, two epochs without improvement (patience 1)
    std::ifstream f(dir / "history.csv");
    std::string header, line;
    std::getline(f, header);
    CHECK(header == "epoch,loss,accuracy,val_loss,val_accuracy");
    std::size_t rows = 0;
    while (std::getline(f, line)) ++rows;
    CHECK(rows == 3);
    CHECK(fs::exists(dir / "model-3.tnet"));
    Net loaded;
    const auto meta = io::load_model(loaded, dir / "model-3.tnet");
    CHECK(meta.at("epoch") == "3");
    fs::remove_all(dir);
}

TEST_CASE("a label outside the model's classes is a shape_error naming the example") {
    Net net;
    net.build({8, 8, 3});
    auto model = compile(net, Adam(), CategoricalCrossentropy<>(), CategoricalAccuracy());
    auto bad = data::Dataset::from_generator(8, [](std::size_t i) {
                   Example e = test::bars_example(i);
                   if (i == 5) e.label = 7;  // the model has 3 outputs
                   return e;
               }).batch(8);
    FitOptions o;
    o.verbose = 0;
    o.feature_cache = false;
    CHECK_THROWS_WITH_AS(model.fit(bad, o), doctest::Contains("label 7 of example 5"), shape_error);
}
