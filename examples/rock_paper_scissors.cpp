// rock_paper_scissors: the reference transfer-learning workflow, end to end, in C++.
//
// Every step of ../shared/docs/reference-workflow.md (the Keras / TF Hub tutorial),
// numbered as there; docs/tutorial.md walks through it beside the Keras code.
//
//     rock_paper_scissors [--data DIR] [--out DIR] [--epochs N] [--seed S]
//                         [--batch-size N] [--no-feature-cache] [--skip-honest] [--no-download]
//
// --data is the folder holding data/ and weights/ (default $TYPENET_DATA, else
// ../shared). What is missing there is downloaded into it (the dataset's public zips;
// Google's quantized MobileNetV2 when the float weights are absent too), unless
// --no-download. Everything the run makes goes to --out (default out/rock_paper_scissors):
// dataset_info.txt, examples.png, summary.txt, history.csv, loss.png/svg,
// accuracy.png/svg, confusion_matrix.png, predictions.png, metrics.json, model.tnet.
#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "typenet/report/confusion.hpp"
#include "typenet/report/grid.hpp"
#include "typenet/report/plot.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;
namespace fs = std::filesystem;

namespace {

struct Options {
    fs::path data = data_dir();
    fs::path out = "out/rock_paper_scissors";
    std::size_t epochs = 5;
    std::uint64_t seed = 42;
    std::size_t batch_size = 64;
    bool feature_cache = true;
    bool honest = true;
    bool download = true;
};

int usage(const char* why = nullptr) {
    if (why) std::fprintf(stderr, "rock_paper_scissors: %s\n", why);
    std::fprintf(stderr,
                 "usage: rock_paper_scissors [--data DIR] [--out DIR] [--epochs N] [--seed S] [--batch-size N]\n"
                 "                           [--no-feature-cache] [--skip-honest] [--no-download]\n");
    return 2;
}

bool parse(int argc, char** argv, Options& o, int& status) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&](const char* name) -> std::string {
            if (i + 1 >= argc) throw config_error(std::string(name) + " needs a value");
            return argv[++i];
        };
        auto number = [&](const char* name) -> unsigned long long {
            const std::string v = value(name);
            const auto n = parse_whole_number(v);
            if (!n) throw config_error(std::string(name) + ": \"" + v + "\" is not a whole number");
            return *n;
        };
        if (a == "--data") o.data = value("--data");
        else if (a == "--out") o.out = value("--out");
        else if (a == "--epochs") o.epochs = number("--epochs");
        else if (a == "--seed") o.seed = number("--seed");
        else if (a == "--batch-size") o.batch_size = number("--batch-size");
        else if (a == "--no-feature-cache") o.feature_cache = false;
        else if (a == "--skip-honest") o.honest = false;
        else if (a == "--no-download") o.download = false;
        else if (a == "-h" || a == "--help") {
            usage();
            status = 0;
            return false;
        } else {
            status = usage(("unknown argument " + a).c_str());
            return false;
        }
    }
    if (o.batch_size == 0) throw config_error("--batch-size must be at least 1");
    return true;
}

// Step 9: the reference's callback, recording loss and accuracy after every batch
// and resetting the running metrics, so each value is the batch's own.
struct CollectBatchStats {
    std::vector<double> losses, accuracies;
    template <class Model>
    void on_train_batch_end(std::size_t, Logs& logs, Model& model) {
        losses.push_back(logs["loss"]);
        accuracies.push_back(logs["accuracy"]);
        model.reset_metrics();
    }
};

class Timer {
public:
    double lap() {
        const auto now = std::chrono::steady_clock::now();
        const double s = std::chrono::duration<double>(now - last_).count();
        last_ = now;
        return s;
    }
    double total() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

private:
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_ = start_;
};

std::string json_number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

std::string confusion_json(const report::ConfusionMatrix& cm) {
    std::string s = "[";
    for (std::size_t a = 0; a < 3; ++a) {
        s += a ? ", [" : "[";
        for (std::size_t p = 0; p < 3; ++p) s += (p ? ", " : "") + std::to_string(cm.count(a, p));
        s += "]";
    }
    return s + "]";
}

std::string per_class_json(const report::ConfusionMatrix& cm, const std::vector<std::string>& names) {
    std::string s = "{";
    for (std::size_t c = 0; c < names.size(); ++c)
        s += (c ? ", \"" : "\"") + names[c] + "\": {\"precision\": " + json_number(cm.precision(c)) +
             ", \"recall\": " + json_number(cm.recall(c)) + ", \"f1\": " + json_number(cm.f1(c)) +
             ", \"support\": " + std::to_string(cm.support(c)) + "}";
    return s + "}";
}

void write_text(const fs::path& p, const std::string& text) {
    io::write_file_atomic(p, std::span<const std::byte>(reinterpret_cast<const std::byte*>(text.data()), text.size()));
}

// The network of steps 6-7: the frozen ImageNet MobileNetV2 feature extractor,
// Dropout(0.5) and a 3-way softmax classifier.
using Net = Sequential<models::MobileNetV2<>, Dropout<0.5f>, Dense<3, Softmax>>;

void make_network(Net& net, const fs::path& weights, std::uint64_t seed) {
    net.build({224, 224, 3}, seed);
    io::load_mobilenet_v2_imagenet(net.layer<0>(), weights);
    net.layer<0>().set_trainable(false);  // trainable = False
}

// Step 4: preprocessing as a type: float pixels / 255, bilinear resize to 224x224
// (tf.image.resize's default), one-hot labels.
using Preprocess = data::Compose<data::Scale<255>, data::Resize<224, 224>, data::OneHot<3>>;

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    int status = 0;
    try {
        if (!parse(argc, argv, opt, status)) return status;
    } catch (const config_error& e) {
        return usage(e.what());
    }

    try {
        Timer timer;
        std::map<std::string, double> seconds;
        fs::create_directories(opt.out);
        std::cout << "typenet " << TYPENET_VERSION_STRING << ": rock-paper-scissors transfer learning, outputs in "
                  << opt.out << "\n\n";

        // ---------------------------------------------------------------- 1. load
        data::LoadOptions lo;
        lo.dir = opt.data / "data";
        lo.download = opt.download;
        const data::LoadedDataset rps = data::load("rock_paper_scissors", lo);
        std::ostringstream info;
        info << rps.info;
        std::cout << info.str() << "\n";
        write_text(opt.out / "dataset_info.txt", info.str());
        const std::vector<std::string>& names = rps.info.label_names;

        // ------------------------------------------------------- 2. show examples
        {
            report::ImageGrid grid(5);
            grid.title("rock_paper_scissors: training examples");
            const data::Dataset& train = rps["train"];
            for (std::size_t i = 0; i < 10; ++i) {
                const std::size_t k = i * train.size() / 10;  // spread over the classes
                const Example e = train.get(k);
                grid.add(data::to_image(e.image), {report::Caption(names.at(static_cast<std::size_t>(e.label)))});
            }
            grid.save_png(opt.out / "examples.png");
        }
        seconds["load_and_examples"] = timer.lap();

        // ------------------------------------------------------------ 3. re-split
        // Shuffled once, with a seed: the three splits are disjoint and reproducible
        // (the reference reshuffled on every pass, so its splits overlapped).
        const data::Dataset all = rps["train"].concatenate(rps["test"]).shuffle(3000, opt.seed, false);
        const data::Dataset val_raw = all.take(600);
        const data::Dataset test_raw = all.skip(600).take(400);
        const data::Dataset train_raw = all.skip(1000);
        std::cout << "re-split: train " << train_raw.size() << ", validation " << val_raw.size() << ", test "
                  << test_raw.size() << " (seed " << opt.seed << ")\n";

        // ------------------------------------------------- 4-5. preprocess, batch
        // With the frozen-feature cache, each image goes through the backbone once and
        // only its 1,280 features are kept (15 MB in all), which is what the reference's
        // cache() of the preprocessed images was for; without it, cache the images.
        auto prepared = [&](const data::Dataset& d) {
            data::Dataset m = d.map(Preprocess{});
            return opt.feature_cache ? m : m.cache();
        };
        const data::BatchedDataset train = prepared(train_raw).shuffle(1900, opt.seed + 1).batch(opt.batch_size).prefetch(2);
        const data::BatchedDataset val = prepared(val_raw).batch(opt.batch_size).prefetch(2);
        const data::BatchedDataset test = test_raw.map(Preprocess{}).batch(opt.batch_size).prefetch(2);

        // ----------------------------------------------------- 6-7. model, summary
        if (opt.download) io::download_mobilenet_v2_weights(opt.data / "weights");
        Net net;
        make_network(net, opt.data / "weights", opt.seed);
        net.set_seed(opt.seed);
        const std::string summary = net.summary();
        std::cout << "\n" << summary;
        write_text(opt.out / "summary.txt", summary);

        // -------------------------------------------------------------- 8. compile
        // The last layer is a softmax, so the loss takes probabilities: with
        // CategoricalCrossentropy<true> (from_logits, the reference's bug) this line
        // would not compile.
        auto model = compile(net, Adam(1e-3f), CategoricalCrossentropy<false>(), CategoricalAccuracy());
        seconds["model"] = timer.lap();

        // ------------------------------------------------------------ 9-10. fit
        CollectBatchStats batch_stats;
        CSVLogger csv(opt.out / "history.csv");
        FitOptions fo;
        fo.epochs = opt.epochs;
        fo.validation = &val;
        fo.feature_cache = opt.feature_cache;
        std::cout << "\n";
        const History history = model.fit(train, fo, batch_stats, csv);
        seconds["fit"] = timer.lap();

        // ------------------------------------------------------------- 11. plots
        report::LinePlot loss_plot;
        loss_plot.title("Loss per training batch").x_label("training step").y_label("loss").y_range(0, 2);
        loss_plot.add("loss", batch_stats.losses);
        loss_plot.save_png(opt.out / "loss.png");
        loss_plot.save_svg(opt.out / "loss.svg");
        report::LinePlot acc_plot;
        acc_plot.title("Accuracy per training batch").x_label("training step").y_label("accuracy").y_range(0, 1);
        acc_plot.add("accuracy", batch_stats.accuracies);
        acc_plot.save_png(opt.out / "accuracy.png");
        acc_plot.save_svg(opt.out / "accuracy.svg");

        // ---------------------------------------------------------- 12. evaluate
        const Logs result = model.evaluate(test);
        std::printf("\ntest: loss %.4f, accuracy %.4f (reference: loss 0.1487, accuracy 0.9675)\n", result["loss"],
                    result["accuracy"]);
        seconds["plots_and_evaluate"] = timer.lap();

        // ------------------------------------------- 13. predict the first 10
        Tensor<4> first10;
        std::vector<std::int32_t> first10_labels;
        std::vector<std::string> first10_sources;
        for (auto it = test.begin_epoch(0); it != test.end(); ++it) {
            const std::size_t n = std::min<std::size_t>(10, it->size());
            first10 = Tensor<4>(Shape<4>{n, 224, 224, 3});
            std::copy(it->images.data(), it->images.data() + first10.size(), first10.data());
            first10_labels.assign(it->labels.begin(), it->labels.begin() + static_cast<long>(n));
            break;
        }
        const Tensor<2> p10 = model.predict(first10);
        report::ImageGrid pred_grid(5);
        pred_grid.title("First test images: actual and predicted");
        std::cout << "\nfirst " << p10.shape()[0] << " test images:\n";
        for (std::size_t i = 0; i < p10.shape()[0]; ++i) {
            const std::size_t k = CategoricalAccuracy::argmax(&p10(i, 0), 3);
            const std::size_t actual = static_cast<std::size_t>(first10_labels[i]);
            std::printf("  [%.4f %.4f %.4f]  actual %-8s predicted %-8s%s\n", p10(i, 0), p10(i, 1), p10(i, 2),
                        names[actual].c_str(), names[k].c_str(), k == actual ? "" : "  WRONG");
            Tensor<3> img(Shape<3>{224, 224, 3});
            std::copy(first10.data() + i * img.size(), first10.data() + (i + 1) * img.size(), img.data());
            char pred[64];
            std::snprintf(pred, sizeof pred, "predicted: %s %.2f", names[k].c_str(), p10(i, k));
            const bool right = k == actual;
            pred_grid.add(img, {report::Caption("actual: " + names[actual]),
                                report::Caption(pred, right ? report::colors::text : report::colors::red)},
                          right ? std::nullopt : std::optional<report::Color>(report::colors::red));
        }
        pred_grid.save_png(opt.out / "predictions.png");

        // --------------------------- 14-15. predict all, argmax, confusion matrix
        const Tensor<2> probs = model.predict(test);
        const std::vector<std::int32_t> test_labels = test.labels(0);
        report::ConfusionMatrix cm(3);
        for (std::size_t i = 0; i < probs.shape()[0]; ++i)
            cm.add(static_cast<std::size_t>(test_labels[i]), CategoricalAccuracy::argmax(&probs(i, 0), 3));
        cm.title("Confusion matrix, re-split test set (" + std::to_string(cm.total()) + " images)");
        std::cout << "\n" << cm.to_string(names);
        std::cout << "(reference: [[142, 3, 0], [1, 131, 1], [0, 1, 121]])\n";
        cm.save_png(opt.out / "confusion_matrix.png", names);

        // How much the re-split leaks: test images with a near-duplicate (cosine
        // similarity of backbone features above 0.99) among the training images.
        std::size_t near_duplicates = 0;
        {
            const auto unbatched = [](const data::Dataset& d) { return d.map(Preprocess{}).batch(64); };
            const Tensor<2> ft = model.features(unbatched(test_raw)), fr = model.features(unbatched(train_raw));
            const std::size_t w = ft.shape()[1];
            std::vector<float> nt(ft.shape()[0]), nr(fr.shape()[0]);
            for (std::size_t i = 0; i < nt.size(); ++i) {
                double s = 0;
                for (std::size_t k = 0; k < w; ++k) s += double(ft(i, k)) * ft(i, k);
                nt[i] = static_cast<float>(std::sqrt(s));
            }
            for (std::size_t j = 0; j < nr.size(); ++j) {
                double s = 0;
                for (std::size_t k = 0; k < w; ++k) s += double(fr(j, k)) * fr(j, k);
                nr[j] = static_cast<float>(std::sqrt(s));
            }
            for (std::size_t i = 0; i < nt.size(); ++i) {
                bool dup = false;
                for (std::size_t j = 0; j < nr.size() && !dup; ++j) {
                    float dot = 0;
                    for (std::size_t k = 0; k < w; ++k) dot += ft(i, k) * fr(j, k);
                    dup = dot > 0.99f * nt[i] * nr[j];
                }
                near_duplicates += dup;
            }
            std::cout << near_duplicates << " of " << nt.size()
                      << " test images have a near-duplicate in the training split (feature cosine > 0.99): the "
                         "re-split's accuracy is optimistic\n";
        }
        seconds["predict_and_reports"] = timer.lap();

        // ------------------------------------------------- 16. save and load
        io::SaveOptions so;
        so.meta["class_names"] = "rock,paper,scissors";
        so.meta["dataset"] = "rock_paper_scissors";
        so.meta["epochs"] = std::to_string(opt.epochs);
        so.store_reference = true;
        io::save_model(net, opt.out / "model.tnet", so, &first10);
        Net loaded;
        const auto meta = io::load_model(loaded, opt.out / "model.tnet");
        const Tensor<2> again = loaded.forward(first10);
        const Tensor<2> before = net.forward(first10);
        double diff = 0;
        for (std::size_t i = 0; i < again.size(); ++i) diff = std::max(diff, double(std::abs(again.data()[i] - before.data()[i])));
        std::cout << "\nsaved " << (opt.out / "model.tnet").string() << " (" << fs::file_size(opt.out / "model.tnet") / 1024
                  << " KiB), loaded it back; classes " << meta.at("class_names") << "\n";
        for (std::size_t i = 0; i < again.shape()[0]; ++i)
            std::printf("  image %zu: before [%.5f %.5f %.5f]  after [%.5f %.5f %.5f]\n", i, before(i, 0), before(i, 1),
                        before(i, 2), again(i, 0), again(i, 1), again(i, 2));
        std::printf("largest difference between the predictions before saving and after loading: %g\n", diff);
        if (diff != 0.0) throw error("the reloaded model does not predict what the saved one did");
        seconds["save_and_load"] = timer.lap();

        // -------------------------------------- the honest figure: original splits
        // The re-split puts renders of the same hand on both sides; training on the
        // original train split and testing on the original test split is the fair test.
        double honest_loss = 0, honest_acc = 0;
        report::ConfusionMatrix honest_cm(3);
        if (opt.honest) {
            Net net2;
            make_network(net2, opt.data / "weights", opt.seed);
            net2.set_seed(opt.seed);
            auto model2 = compile(net2, Adam(1e-3f), CategoricalCrossentropy<false>(), CategoricalAccuracy());
            model2.share_feature_cache(model.feature_cache());  // same frozen backbone: reuse its features
            const auto train2 = prepared(rps["train"]).shuffle(2520, opt.seed + 2).batch(opt.batch_size).prefetch(2);
            const auto test2 = rps["test"].map(Preprocess{}).batch(opt.batch_size).prefetch(2);
            FitOptions f2;
            f2.epochs = opt.epochs;
            f2.verbose = 0;
            f2.feature_cache = opt.feature_cache;
            std::cout << "\nhonest protocol: training on the original train split (" << rps["train"].size()
                      << "), testing on the original test split (" << rps["test"].size() << ")\n";
            model2.fit(train2, f2);
            const Logs r2 = model2.evaluate(test2);
            honest_loss = r2["loss"];
            honest_acc = r2["accuracy"];
            const Tensor<2> p2 = model2.predict(test2);
            const auto l2 = test2.labels(0);
            for (std::size_t i = 0; i < p2.shape()[0]; ++i)
                honest_cm.add(static_cast<std::size_t>(l2[i]), CategoricalAccuracy::argmax(&p2(i, 0), 3));
            std::printf("original test split: loss %.4f, accuracy %.4f\n", honest_loss, honest_acc);
            std::cout << honest_cm.to_string(names);
            seconds["honest_protocol"] = timer.lap();
        }

        // ------------------------------------------------------------ metrics.json
        const double total = timer.total();
        std::string j = "{\n";
        j += "  \"seed\": " + std::to_string(opt.seed) + ",\n";
        j += "  \"epochs\": " + std::to_string(opt.epochs) + ",\n";
        j += "  \"feature_cache\": " + std::string(model.params().cached_features ? "true" : "false") + ",\n";
        j += "  \"test_loss\": " + json_number(result["loss"]) + ",\n";
        j += "  \"test_accuracy\": " + json_number(result["accuracy"]) + ",\n";
        j += "  \"confusion_matrix\": " + confusion_json(cm) + ",\n";
        j += "  \"test_images_with_near_duplicate_in_train\": " + std::to_string(near_duplicates) + ",\n";
        j += "  \"per_class\": " + per_class_json(cm, names) + ",\n";
        j += "  \"final_epoch\": {";
        bool first_key = true;
        for (const auto& [k, v] : history.epochs().back()) {
            j += (first_key ? "\"" : ", \"") + k + "\": " + json_number(v);
            first_key = false;
        }
        j += "},\n";
        if (opt.honest) {
            j += "  \"original_splits\": {\"train\": " + std::to_string(rps["train"].size()) +
                 ", \"test\": " + std::to_string(rps["test"].size()) + ", \"test_loss\": " + json_number(honest_loss) +
                 ", \"test_accuracy\": " + json_number(honest_acc) + ", \"confusion_matrix\": " +
                 confusion_json(honest_cm) + ", \"per_class\": " + per_class_json(honest_cm, names) + "},\n";
        }
        j += "  \"seconds\": {";
        first_key = true;
        for (const auto& [k, v] : seconds) {
            j += (first_key ? "\"" : ", \"") + k + "\": " + json_number(v);
            first_key = false;
        }
        j += ", \"total\": " + json_number(total) + "}\n}\n";
        write_text(opt.out / "metrics.json", j);
        std::printf("\ndone in %.1f s; outputs in %s\n", total, opt.out.c_str());
        return 0;
    } catch (const error& e) {
        std::fprintf(stderr, "rock_paper_scissors: %s\n", e.what());
        return 1;
    }
}
