// typenet: transfer learning on your own images from the command line.
//
//   typenet train DATA_DIR --out MODEL [--epochs N] [--fine-tune-from BLOCK] [--fine-tune-epochs N]
//                 [--lr X] [--fine-tune-lr X] [--augment] [--val-split F] [--seed S]
//                 [--batch-size N] [--weights DIR] [--no-download] [--report DIR]
//   typenet evaluate MODEL DATA_DIR [--batch-size N]
//   typenet predict MODEL IMAGE... [--json] [--top K]
//   typenet info MODEL
//
// DATA_DIR holds one sub-folder of images per class. `train` attaches a frozen
// ImageNet MobileNetV2 (weights from --weights, default $TYPENET_DATA/weights; Google's
// quantized model is downloaded there when it holds none, unless --no-download), adds
// Dropout(0.5) and a softmax Dense head with one unit per class, trains it (on cached
// backbone features unless --augment), optionally fine-tunes the top blocks from BLOCK
// (0..16 or a name such as expanded_conv_12) with batch norm frozen, and saves the
// model with its class names and training metadata; reports (history.csv, loss and
// accuracy plots, the validation confusion matrix, metrics.json) go to --report
// (default MODEL.report/). Errors are one line on stderr and a non-zero exit status
// (2 for bad arguments).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "typenet/report/confusion.hpp"
#include "typenet/report/plot.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;
namespace fs = std::filesystem;

namespace {

using Net = Sequential<models::MobileNetV2<>, Dropout<0.5f>, Dense<0, Softmax>>;
// Photos of any size: pixels to [0, 1], shrunk to 224x224 with antialiasing.
using Preprocess = data::Compose<data::Scale<255>, data::ResizeAntialiased<224, 224>>;
constexpr const char* preprocess_name = "scale 1/255, antialiased resize to 224x224";

struct UsageError : config_error {
    using config_error::config_error;
};

const char* usage_text =
    "usage: typenet train DATA_DIR --out MODEL [--epochs N] [--fine-tune-from BLOCK] [--fine-tune-epochs N]\n"
    "                     [--lr X] [--fine-tune-lr X] [--augment] [--val-split F] [--seed S]\n"
    "                     [--batch-size N] [--weights DIR] [--no-download] [--report DIR]\n"
    "       typenet evaluate MODEL DATA_DIR [--batch-size N]\n"
    "       typenet predict MODEL IMAGE... [--json] [--top K]\n"
    "       typenet info MODEL\n";

/// Arguments after the command: positional ones and --options (with or without a value).
class Args {
public:
    Args(int argc, char** argv, int first, const std::vector<std::string>& flags, const std::vector<std::string>& valued) {
        for (int i = first; i < argc; ++i) {
            const std::string a = argv[i];
            if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
                if (std::find(flags.begin(), flags.end(), a) != flags.end()) {
                    options_[a] = "";
                } else if (std::find(valued.begin(), valued.end(), a) != valued.end()) {
                    if (i + 1 >= argc) throw UsageError(a + " needs a value");
                    options_[a] = argv[++i];
                } else {
                    throw UsageError("unknown option " + a);
                }
            } else {
                positional_.push_back(a);
            }
        }
    }
    const std::vector<std::string>& positional() const { return positional_; }
    bool flag(const std::string& k) const { return options_.count(k) > 0; }
    std::optional<std::string> get(const std::string& k) const {
        auto it = options_.find(k);
        return it == options_.end() ? std::nullopt : std::optional<std::string>(it->second);
    }
    std::size_t count(const std::string& k, std::size_t fallback, std::size_t lo = 1) const {
        auto v = get(k);
        if (!v) return fallback;
        const auto n = parse_whole_number(*v);
        if (!n || *n < lo) throw UsageError(k + ": \"" + *v + "\" is not a whole number >= " + std::to_string(lo));
        return static_cast<std::size_t>(*n);
    }
    double real(const std::string& k, double fallback, double lo, double hi) const {
        auto v = get(k);
        if (!v) return fallback;
        char* end = nullptr;
        const double x = std::strtod(v->c_str(), &end);
        if (v->empty() || *end || !(x >= lo && x <= hi))
            throw UsageError(k + ": \"" + *v + "\" is not a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
        return x;
    }

private:
    std::vector<std::string> positional_;
    std::map<std::string, std::string> options_;
};

std::string join(const std::vector<std::string>& v, const std::string& sep) {
    std::string s;
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
    return s;
}
std::vector<std::string> split_lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream is(s);
    for (std::string l; std::getline(is, l);) out.push_back(l);
    return out;
}
std::string json_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        if (static_cast<unsigned char>(c) < 0x20) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", c);
            o += b;
        } else {
            o += c;
        }
    }
    return o;
}
void write_text(const fs::path& p, const std::string& t) {
    io::write_file_atomic(p, std::span<const std::byte>(reinterpret_cast<const std::byte*>(t.data()), t.size()));
}

Net make_net(std::size_t classes) { return Net(models::MobileNetV2<>(), Dropout<0.5f>(), Dense<0, Softmax>(classes)); }

/// The class names stored in a model file (one per line).
std::vector<std::string> model_classes(const fs::path& model) {
    const io::Archive a = io::read_archive(model);
    auto it = a.meta.find("class_names");
    if (it == a.meta.end()) throw format_error(model.string(), "not a model made by `typenet train` (no class names)");
    auto names = split_lines(it->second);
    if (names.empty()) throw format_error(model.string(), "the model has no class names");
    return names;
}

struct BatchStats {
    std::vector<double> losses, accuracies;
    template <class M>
    void on_train_batch_end(std::size_t, Logs& logs, M& model) {
        losses.push_back(logs["loss"]);
        accuracies.push_back(logs["accuracy"]);
        model.reset_metrics();
    }
};

/// Unfreeze MobileNetV2 from `from`: a block number (0-16) or a layer name ("expanded_conv_12",
/// "Conv_1"). @throws config_error when it is neither.
void unfreeze_backbone(models::MobileNetV2<>& backbone, const std::string& from) {
    if (const auto b = parse_whole_number(from)) {
        if (*b > 16) throw config_error("block " + from + " is not one of MobileNetV2's blocks 0..16");
        backbone.unfreeze_from(static_cast<std::size_t>(*b));
    } else {
        backbone.unfreeze_from(from);
    }
}

int cmd_train(const Args& args) {
    if (args.positional().size() != 1) throw UsageError("train needs exactly one DATA_DIR");
    const fs::path dir = args.positional()[0];
    const auto out = args.get("--out");
    if (!out) throw UsageError("train needs --out MODEL");
    const fs::path model_path = *out;
    const fs::path report = args.get("--report").value_or(model_path.string() + ".report");
    const std::size_t epochs = args.count("--epochs", 5);
    const std::size_t batch = args.count("--batch-size", 32);
    const std::size_t seed = args.count("--seed", 42, 0);
    const double lr = args.real("--lr", 1e-3, 1e-9, 10);
    const double ft_lr = args.real("--fine-tune-lr", 1e-4, 1e-9, 10);
    const std::size_t ft_epochs = args.count("--fine-tune-epochs", 2);
    const double val_split = args.real("--val-split", 0.2, 0.0, 0.9);
    const bool augment = args.flag("--augment");
    const fs::path weights = args.get("--weights").value_or((data_dir() / "weights").string());
    // A mistyped --fine-tune-from is refused now, not after the head's epochs.
    if (auto from = args.get("--fine-tune-from")) {
        models::MobileNetV2<> probe;
        try {
            unfreeze_backbone(probe, *from);
        } catch (const config_error& e) {
            throw UsageError(std::string("--fine-tune-from: ") + e.what());
        }
    }

    data::ImageFolder folder(dir);
    const auto& names = folder.class_names();
    if (names.size() < 2) throw config_error(dir.string() + ": needs at least two class folders, found " + std::to_string(names.size()));
    const data::Splits sp = folder.split(data::Fractions{1.0 - val_split, val_split, 0.0}, seed);
    std::printf("%s: %zu images in %zu classes (%s); train %zu, validation %zu\n", dir.c_str(), folder.size(),
                names.size(), join(names, ", ").c_str(), sp.train.size(), sp.validation.size());
    if (sp.train.size() == 0) throw config_error(dir.string() + ": no training images after the split");

    data::Dataset train_data = sp.train.map(Preprocess{});
    if (augment) train_data = train_data.map(data::RandomFlipLeftRight{}, seed + 3);
    const auto train = train_data.shuffle(train_data.size(), seed + 1).batch(batch).prefetch(2);
    const auto val = sp.validation.map(Preprocess{}).batch(batch).prefetch(2);
    const data::BatchedDataset* val_ptr = sp.validation.size() ? &val : nullptr;

    Net net = make_net(names.size());
    net.build({224, 224, 3}, seed);
    net.set_seed(seed);
    if (!args.flag("--no-download")) io::download_mobilenet_v2_weights(weights);  // only when missing
    io::load_mobilenet_v2_imagenet(net.layer<0>(), weights);
    net.layer<0>().set_trainable(false);
    std::cout << net.summary();

    fs::create_directories(report);
    BatchStats stats;
    CSVLogger csv(report / "history.csv");
    auto model = compile(net, Adam(static_cast<float>(lr)), CategoricalCrossentropy<>(), CategoricalAccuracy());
    FitOptions fo;
    fo.epochs = epochs;
    fo.validation = val_ptr;
    const auto t0 = std::chrono::steady_clock::now();
    model.fit(train, fo, stats, csv);

    std::string ft_from = "none";
    if (auto from = args.get("--fine-tune-from")) {
        auto& backbone = net.layer<0>();
        unfreeze_backbone(backbone, *from);
        backbone.set_batchnorm_mode(BatchNormMode::Frozen);
        ft_from = *from;
        auto tuned = compile(net, Adam(static_cast<float>(ft_lr)), CategoricalCrossentropy<>(), CategoricalAccuracy());
        LearningRateScheduler lrs(CosineDecay{static_cast<float>(ft_lr), ft_epochs * train.size(), 0.1f});
        FitOptions f2;
        f2.epochs = ft_epochs;
        f2.validation = val_ptr;
        std::printf("fine-tuning from %s (batch norm frozen), lr %g, %zu epochs\n", from->c_str(), ft_lr, ft_epochs);
        tuned.fit(train, f2, stats, lrs);
    }
    const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    // Reports.
    report::LinePlot lp;
    lp.title("Loss per training batch").x_label("training step").y_label("loss").y_range(0, 2).add("loss", stats.losses);
    lp.save_png(report / "loss.png");
    lp.save_svg(report / "loss.svg");
    report::LinePlot ap;
    ap.title("Accuracy per training batch").x_label("training step").y_label("accuracy").y_range(0, 1).add("accuracy", stats.accuracies);
    ap.save_png(report / "accuracy.png");
    ap.save_svg(report / "accuracy.svg");
    std::string metrics = "{\"train_seconds\": " + std::to_string(train_s);
    double val_acc = -1;
    if (val_ptr) {
        auto evaluator = compile(net, Adam(), CategoricalCrossentropy<>(), CategoricalAccuracy());
        const Tensor<2> p = evaluator.predict(val);
        const auto labels = val.labels(0);
        report::ConfusionMatrix cm(names.size());
        for (std::size_t i = 0; i < p.shape()[0]; ++i)
            cm.add(static_cast<std::size_t>(labels[i]), CategoricalAccuracy::argmax(&p(i, 0), names.size()));
        cm.title("Validation confusion matrix");
        cm.save_png(report / "confusion_matrix.png", names);
        std::cout << cm.to_string(names);
        val_acc = cm.accuracy();
        metrics += ", \"validation_accuracy\": " + std::to_string(val_acc);
    }
    metrics += "}\n";
    write_text(report / "metrics.json", metrics);

    io::SaveOptions so;
    so.meta["class_names"] = join(names, "\n");
    so.meta["preprocess"] = preprocess_name;
    so.meta["trained_on"] = fs::absolute(dir).string();
    so.meta["images"] = std::to_string(folder.size());
    so.meta["epochs"] = std::to_string(epochs);
    so.meta["learning_rate"] = std::to_string(lr);
    so.meta["fine_tune_from"] = ft_from;
    so.meta["augment"] = augment ? "random horizontal flips" : "none";
    so.meta["seed"] = std::to_string(seed);
    so.meta["validation_accuracy"] = val_acc >= 0 ? std::to_string(val_acc) : "n/a";
    const std::time_t now = std::time(nullptr);
    char date[32];
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    so.meta["saved_at"] = date;
    io::save_model(net, model_path, so);
    std::printf("saved %s; reports in %s\n", model_path.c_str(), report.c_str());
    return 0;
}

int cmd_evaluate(const Args& args) {
    if (args.positional().size() != 2) throw UsageError("evaluate needs MODEL and DATA_DIR");
    const fs::path model_path = args.positional()[0], dir = args.positional()[1];
    const auto names = model_classes(model_path);
    Net net = make_net(names.size());
    io::load_model(net, model_path);
    net.layer<0>().set_trainable(false);
    data::ImageFolderOptions fo;
    fo.class_names = names;
    data::ImageFolder folder(dir, fo);
    const auto batches = folder.dataset().map(Preprocess{}).batch(args.count("--batch-size", 32)).prefetch(2);
    auto model = compile(net, Adam(), CategoricalCrossentropy<>(), CategoricalAccuracy());
    const Logs r = model.evaluate(batches);
    const Tensor<2> p = model.predict(batches);
    const auto labels = batches.labels(0);
    report::ConfusionMatrix cm(names.size());
    for (std::size_t i = 0; i < p.shape()[0]; ++i)
        cm.add(static_cast<std::size_t>(labels[i]), CategoricalAccuracy::argmax(&p(i, 0), names.size()));
    std::printf("%s on %s (%zu images): loss %.4f, accuracy %.4f\n", model_path.c_str(), dir.c_str(), folder.size(),
                r["loss"], r["accuracy"]);
    std::cout << cm.to_string(names);
    return 0;
}

int cmd_predict(const Args& args) {
    if (args.positional().size() < 2) throw UsageError("predict needs MODEL and at least one IMAGE");
    const fs::path model_path = args.positional()[0];
    const auto names = model_classes(model_path);
    const std::size_t top = std::min(args.count("--top", 1), names.size());
    const bool json = args.flag("--json");
    Net net = make_net(names.size());
    io::load_model(net, model_path);
    int status = 0;
    bool first = true;
    if (json) std::printf("[");
    for (std::size_t i = 1; i < args.positional().size(); ++i) {
        const std::string& path = args.positional()[i];
        Example e;
        try {
            e.image = data::to_tensor(data::read_image(path));
        } catch (const error& err) {
            std::fprintf(stderr, "typenet: %s\n", err.what());
            status = 1;
            continue;
        }
        Rng rng(0);
        Preprocess{}(e, rng);
        Tensor<4> x(Shape<4>{1, 224, 224, 3});
        std::copy(e.image.begin(), e.image.end(), x.data());
        const Tensor<2>& p = net.forward(x);
        std::vector<std::size_t> idx(names.size());
        std::iota(idx.begin(), idx.end(), 0);
        std::stable_sort(idx.begin(), idx.end(), [&](auto a, auto b) { return p(0, a) > p(0, b); });
        if (json) {
            std::printf("%s\n  {\"image\": \"%s\", \"predictions\": [", first ? "" : ",", json_escape(path).c_str());
            for (std::size_t k = 0; k < top; ++k)
                std::printf("%s{\"label\": \"%s\", \"probability\": %.6f}", k ? ", " : "", json_escape(names[idx[k]]).c_str(),
                            p(0, idx[k]));
            std::printf("]}");
        } else {
            std::printf("%s:", path.c_str());
            for (std::size_t k = 0; k < top; ++k) std::printf(" %s %.4f", names[idx[k]].c_str(), p(0, idx[k]));
            std::printf("\n");
        }
        first = false;
    }
    if (json) std::printf("%s]\n", first ? "" : "\n");
    return status;
}

int cmd_info(const Args& args) {
    if (args.positional().size() != 1) throw UsageError("info needs exactly one MODEL");
    const fs::path model_path = args.positional()[0];
    const io::Archive a = io::read_archive(model_path);
    std::size_t params = 0;
    for (const auto& t : a.tensors)
        if (t.name.rfind("__", 0) != 0) params += t.data.size();
    auto meta = [&](const char* k) {
        auto it = a.meta.find(k);
        return it == a.meta.end() ? std::string("(none)") : it->second;
    };
    std::printf("model:        %s (%ju bytes)\n", model_path.c_str(), static_cast<std::uintmax_t>(fs::file_size(model_path)));
    std::printf("format:       %s, written by typenet %s\n", meta("format").c_str(), meta("typenet_version").c_str());
    std::printf("input shape:  (None, %s)\n", meta("input_shape").c_str());
    std::printf("tensors:      %zu, %zu values\n", a.tensors.size(), params);
    std::printf("classes:      %s\n", join(split_lines(meta("class_names")), ", ").c_str());
    std::printf("architecture:\n");
    for (const auto& l : split_lines(meta("signature"))) std::printf("  %s\n", l.c_str());
    std::printf("training:\n");
    for (const auto& [k, v] : a.meta)
        if (k != "signature" && k != "class_names" && k != "format" && k != "typenet_version" && k != "input_shape")
            std::printf("  %-20s %s\n", k.c_str(), v.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fputs(usage_text, stderr);
        return 2;
    }
    const std::string cmd = argv[1];
    try {
        if (cmd == "-h" || cmd == "--help" || cmd == "help") {
            std::fputs(usage_text, stdout);
            return 0;
        }
        if (cmd == "train")
            return cmd_train(Args(argc, argv, 2, {"--augment", "--no-download"},
                                  {"--out", "--epochs", "--fine-tune-from", "--fine-tune-epochs", "--lr", "--fine-tune-lr",
                                   "--val-split", "--seed", "--batch-size", "--weights", "--report"}));
        if (cmd == "evaluate") return cmd_evaluate(Args(argc, argv, 2, {}, {"--batch-size"}));
        if (cmd == "predict") return cmd_predict(Args(argc, argv, 2, {"--json"}, {"--top"}));
        if (cmd == "info") return cmd_info(Args(argc, argv, 2, {}, {}));
        std::fprintf(stderr, "typenet: unknown command \"%s\" (train, evaluate, predict, info)\n", cmd.c_str());
        return 2;
    } catch (const UsageError& e) {
        std::fprintf(stderr, "typenet %s: %s (see typenet --help)\n", cmd.c_str(), e.what());
        return 2;
    } catch (const error& e) {
        std::fprintf(stderr, "typenet %s: %s\n", cmd.c_str(), e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "typenet %s: %s\n", cmd.c_str(), e.what());
        return 1;
    }
}
