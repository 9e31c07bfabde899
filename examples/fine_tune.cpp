// fine_tune: after the frozen transfer-learning run, unfreeze the top of MobileNetV2
// and train a few more epochs at a lower learning rate (the step the reference
// tutorial ends with).
//
//     fine_tune [--data DIR] [--out DIR] [--seed S] [--epochs N] [--fine-tune-epochs N]
//               [--from BLOCK] [--lr X] [--no-augment] [--train-batchnorm] [--no-download]
//
// Data and weights as rock_paper_scissors finds them (downloaded when missing, unless
// --no-download).
// 1. the reference workflow's model and re-split (see rock_paper_scissors.cpp), trained
//    frozen for --epochs epochs on cached features;
// 2. blocks BLOCK..16 and the last 1x1 convolution unfrozen (default 12: the last five
//    blocks), batch norm kept frozen (moving statistics, not updated) unless
//    --train-batchnorm, Adam with a cosine-decayed learning rate from --lr (1e-4), random
//    horizontal flips on the training images (which turns the feature cache off: the
//    backbone now runs, forward and backward, on every batch);
// 3. test accuracy before and after, written to OUT/fine_tune.json.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "typenet/typenet.hpp"

using namespace typenet;
namespace fs = std::filesystem;

namespace {
using Net = Sequential<models::MobileNetV2<>, Dropout<0.5f>, Dense<3, Softmax>>;
using Preprocess = data::Compose<data::Scale<255>, data::Resize<224, 224>, data::OneHot<3>>;

struct Options {
    fs::path data = data_dir();
    fs::path out = "out/fine_tune";
    std::uint64_t seed = 42;
    std::size_t epochs = 5, fine_tune_epochs = 2, from = 12;
    float lr = 1e-4f;
    bool augment = true, train_batchnorm = false, download = true;
};

int usage(const std::string& why = "") {
    if (!why.empty()) std::fprintf(stderr, "fine_tune: %s\n", why.c_str());
    std::fprintf(stderr,
                 "usage: fine_tune [--data DIR] [--out DIR] [--seed S] [--epochs N] [--fine-tune-epochs N]\n"
                 "                 [--from BLOCK] [--lr X] [--no-augment] [--train-batchnorm] [--no-download]\n");
    return 2;
}
}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw config_error(a + " needs a value");
            return argv[++i];
        };
        // "5x" and "-1" are errors, not 5 and 2^64 - 1.
        auto whole = [&]() -> std::uint64_t {
            const std::string v = next();
            const auto n = parse_whole_number(v);
            if (!n) throw config_error("\"" + v + "\" is not a whole number");
            return *n;
        };
        try {
            if (a == "--data") o.data = next();
            else if (a == "--out") o.out = next();
            else if (a == "--seed") o.seed = whole();
            else if (a == "--epochs") o.epochs = whole();
            else if (a == "--fine-tune-epochs") o.fine_tune_epochs = whole();
            else if (a == "--from") o.from = whole();
            else if (a == "--lr") {
                const std::string v = next();
                std::size_t used = 0;
                o.lr = std::stof(v, &used);
                if (used != v.size() || !(o.lr > 0.0f) || !std::isfinite(o.lr))
                    throw config_error("\"" + v + "\" is not a positive learning rate");
            }
            else if (a == "--no-augment") o.augment = false;
            else if (a == "--train-batchnorm") o.train_batchnorm = true;
            else if (a == "--no-download") o.download = false;
            else if (a == "-h" || a == "--help") return usage(), 0;
            else return usage("unknown argument " + a);
        } catch (const std::exception& e) {
            return usage(std::string("bad value for ") + a + ": " + e.what());
        }
    }
    try {
        fs::create_directories(o.out);
        data::LoadOptions lo;
        lo.dir = o.data / "data";
        lo.download = o.download;
        const data::LoadedDataset rps = data::load("rock_paper_scissors", lo);
        const data::Dataset all = rps["train"].concatenate(rps["test"]).shuffle(3000, o.seed, false);
        const auto val = all.take(600).map(Preprocess{}).batch(64).prefetch(2);
        const auto test = all.skip(600).take(400).map(Preprocess{}).batch(64).prefetch(2);
        const data::Dataset train_raw = all.skip(1000).map(Preprocess{});

        Net net;
        net.build({224, 224, 3}, o.seed);
        net.set_seed(o.seed);
        if (o.download) io::download_mobilenet_v2_weights(o.data / "weights");
        io::load_mobilenet_v2_imagenet(net.layer<0>(), o.data / "weights");
        net.layer<0>().set_trainable(false);

        // 1. frozen: the reference workflow
        auto frozen = compile(net, Adam(1e-3f), CategoricalCrossentropy<>(), CategoricalAccuracy());
        FitOptions f1;
        f1.epochs = o.epochs;
        f1.validation = &val;
        std::cout << "== frozen backbone, " << o.epochs << " epochs\n";
        frozen.fit(train_raw.shuffle(1900, o.seed + 1).batch(64).prefetch(2), f1);
        const Logs before = frozen.evaluate(test);
        std::printf("frozen: test loss %.4f, accuracy %.4f\n\n", before["loss"], before["accuracy"]);

        // 2. fine-tune the top blocks
        auto& backbone = net.layer<0>();
        backbone.unfreeze_from(o.from);
        backbone.set_batchnorm_mode(o.train_batchnorm ? BatchNormMode::Auto : BatchNormMode::Frozen);
        auto tuned = compile(net, Adam(o.lr), CategoricalCrossentropy<>(), CategoricalAccuracy());
        const auto counts = net.parameter_counts();
        std::printf("== fine-tuning from block %zu (%s batch norm): %zu trainable parameters, lr %g, %s\n", o.from,
                    o.train_batchnorm ? "training" : "frozen", counts[1], o.lr,
                    o.augment ? "random horizontal flips" : "no augmentation");
        data::Dataset tune_data = train_raw;
        if (o.augment) tune_data = tune_data.map(data::RandomFlipLeftRight{}, o.seed + 7);
        const auto tune_batches = tune_data.shuffle(1900, o.seed + 2).batch(64).prefetch(2);
        LearningRateScheduler lrs(CosineDecay{o.lr, o.fine_tune_epochs * tune_batches.size(), 0.1f});
        FitOptions f2;
        f2.epochs = o.fine_tune_epochs;
        f2.validation = &val;
        tuned.fit(tune_batches, f2, lrs);
        const Logs after = tuned.evaluate(test);
        std::printf("fine-tuned: test loss %.4f, accuracy %.4f (frozen: %.4f)\n", after["loss"], after["accuracy"],
                    before["accuracy"]);

        char json[512];
        std::snprintf(json, sizeof json,
                      "{\"seed\": %llu, \"from_block\": %zu, \"batchnorm\": \"%s\", \"frozen_test_accuracy\": %.6g, "
                      "\"frozen_test_loss\": %.6g, \"fine_tuned_test_accuracy\": %.6g, \"fine_tuned_test_loss\": %.6g}\n",
                      static_cast<unsigned long long>(o.seed), o.from, o.train_batchnorm ? "train" : "frozen",
                      before["accuracy"], before["loss"], after["accuracy"], after["loss"]);
        const std::string j = json;
        io::write_file_atomic(o.out / "fine_tune.json",
                              std::span<const std::byte>(reinterpret_cast<const std::byte*>(j.data()), j.size()));
        std::cout << j;
        return 0;
    } catch (const error& e) {
        std::fprintf(stderr, "fine_tune: %s\n", e.what());
        return 1;
    }
}
