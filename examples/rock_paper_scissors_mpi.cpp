// rock_paper_scissors_mpi: the reference transfer-learning workflow
// (rock_paper_scissors.cpp) trained data-parallel on several processes with MPI.
//
//     mpirun -np 2 rock_paper_scissors_mpi [--data DIR] [--out DIR] [--epochs N] [--seed S]
//                  [--batch-size N] [--fine-tune-epochs N] [--from BLOCK] [--sync-batchnorm]
//                  [--no-feature-cache]
//     mpirun -np 8 --hostfile hosts rock_paper_scissors_mpi ...   (several machines: docs/distributed.md)
//
// Every process loads the same dataset description (file lists only) and builds the
// same model; each then reads and decodes only its share of every global batch
// (--batch-size is the global batch, a multiple of the number of processes). With the
// frozen backbone the processes extract the training features together (1/P each) and
// exchange them; the head's gradients are averaged after every step. --fine-tune-epochs
// then unfreezes the top blocks (from --from, default 12) and trains the backbone too,
// data-parallel, with random flips and a cosine-decayed learning rate (--sync-batchnorm:
// batch norm trained on global-batch statistics; default: frozen batch norm, as the
// fine_tune example). Rank 0 prints and writes the outputs (in --out, default
// out/rock_paper_scissors_mpi): history.csv, loss.png, accuracy.png,
// confusion_matrix.png, metrics.json, model.tnet.
//
// Threads: each process uses cores / (processes on its machine) threads, at most the
// cores it is bound to, unless OMP_NUM_THREADS is set. An error on any process ends the whole job (MPI_Abort).
//
// Built without MPI (CMake TYPENET_WITH_MPI=OFF, meson -Dmpi=false) it only says so.
#include <cstdio>

#if !defined(TYPENET_WITH_MPI)
int main() {
    std::printf("rock_paper_scissors_mpi: built without MPI; configure with -DTYPENET_WITH_MPI=ON (CMake) or "
                "-Dmpi=true (meson)\n");
    return 77;
}
#else

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <sched.h>

#include "typenet/distributed/data_parallel.hpp"
#include "typenet/report/confusion.hpp"
#include "typenet/report/plot.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;
namespace fs = std::filesystem;

namespace {

struct Options {
    fs::path data = data_dir();
    fs::path out = "out/rock_paper_scissors_mpi";
    std::size_t epochs = 5, batch_size = 64, fine_tune_epochs = 0, from = 12;
    std::uint64_t seed = 42;
    bool feature_cache = true, sync_batchnorm = false;
};

int usage(const std::string& why = "") {
    if (!why.empty()) std::fprintf(stderr, "rock_paper_scissors_mpi: %s\n", why.c_str());
    std::fprintf(stderr,
                 "usage: mpirun -np P rock_paper_scissors_mpi [--data DIR] [--out DIR] [--epochs N] [--seed S]\n"
                 "           [--batch-size N] [--fine-tune-epochs N] [--from BLOCK] [--sync-batchnorm]\n"
                 "           [--no-feature-cache]\n");
    return 2;
}

bool parse(int argc, char** argv, Options& o) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw config_error(a + " needs a value");
            return argv[++i];
        };
        auto number = [&]() -> std::size_t {
            const std::string v = value();
            const auto n = parse_whole_number(v);
            if (!n) throw config_error(a + ": \"" + v + "\" is not a whole number");
            return static_cast<std::size_t>(*n);
        };
        if (a == "--data") o.data = value();
        else if (a == "--out") o.out = value();
        else if (a == "--epochs") o.epochs = number();
        else if (a == "--seed") o.seed = number();
        else if (a == "--batch-size") o.batch_size = number();
        else if (a == "--fine-tune-epochs") o.fine_tune_epochs = number();
        else if (a == "--from") o.from = number();
        else if (a == "--sync-batchnorm") o.sync_batchnorm = true;
        else if (a == "--no-feature-cache") o.feature_cache = false;
        else if (a == "-h" || a == "--help") return false;
        else throw config_error("unknown argument " + a);
    }
    if (o.batch_size == 0) throw config_error("--batch-size must be at least 1");
    return true;
}

// The reference's callback (step 9): per-batch loss and accuracy, metrics reset after
// each batch. It changes the model (reset_metrics), so it runs on every process.
struct CollectBatchStats {
    std::vector<double> losses, accuracies;
    template <class Model>
    void on_train_batch_end(std::size_t, Logs& logs, Model& model) {
        losses.push_back(logs["loss"]);
        accuracies.push_back(logs["accuracy"]);
        model.reset_metrics();
    }
};

void write_text(const fs::path& p, const std::string& text) {
    io::write_file_atomic(p, std::span<const std::byte>(reinterpret_cast<const std::byte*>(text.data()), text.size()));
}

using Net = Sequential<models::MobileNetV2<>, Dropout<0.5f>, Dense<3, Softmax>>;
using Preprocess = data::Compose<data::Scale<255>, data::Resize<224, 224>, data::OneHot<3>>;

// Every process's predictions for its shard of `data`, gathered in the order of `data`.
template <class M>
void predict_all(M& model, const data::BatchedDataset& data, const distributed::Communicator& comm,
                 std::vector<float>& probs, std::vector<std::int32_t>& labels) {
    const auto P = static_cast<std::size_t>(comm.size()), r = static_cast<std::size_t>(comm.rank());
    const data::BatchedDataset mine = data.shard(P, r, data::ShardTail::all);
    const Tensor<2> p = model.predict(mine);
    const std::vector<std::int32_t> l = mine.labels(0);
    probs = comm.allgather(p.data(), p.size());
    labels = comm.allgather(l.data(), l.size());
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    distributed::Environment mpi(argc, argv);
    distributed::Communicator comm;
    const bool root = comm.is_root();
    Options o;
    try {
        if (!parse(argc, argv, o)) return root ? usage() : 2;
    } catch (const config_error& e) {
        return root ? usage(e.what()) : 2;
    }
    if (!fs::is_directory(o.data / "data" / "rock_paper_scissors") || !fs::is_directory(o.data / "weights")) {
        if (root)
            std::printf("SKIPPED: %s/data/rock_paper_scissors or %s/weights not found (set TYPENET_DATA or --data)\n",
                        o.data.c_str(), o.data.c_str());
        return 77;
    }
    // Cores shared among the processes of this machine, unless the user chose; never
    // more threads than the cores this process may run on (Open MPI binds each process
    // to one core by default when it starts at most 2: see docs/distributed.md).
    const int per_node = comm.node_size();
    if (!std::getenv("OMP_NUM_THREADS")) {
        int threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / per_node);
        cpu_set_t allowed;
        if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) threads = std::min(threads, CPU_COUNT(&allowed));
        set_num_threads(std::max(threads, 1));
    }

    try {
        const auto t0 = std::chrono::steady_clock::now();
        if (root) {
            fs::create_directories(o.out);
            std::printf("typenet %s: rock-paper-scissors, data-parallel on %d processes (%d on this machine, %d "
                        "threads each), global batch %zu; outputs in %s\n\n",
                        TYPENET_VERSION_STRING, comm.size(), per_node, max_threads(), o.batch_size, o.out.c_str());
        }
        // 1-5. load (file lists only), re-split, preprocess, batch: the same on every process.
        data::LoadOptions lo;
        lo.dir = o.data / "data";
        const data::LoadedDataset rps = data::load("rock_paper_scissors", lo);
        const std::vector<std::string>& names = rps.info.label_names;
        const data::Dataset all = rps["train"].concatenate(rps["test"]).shuffle(3000, o.seed, false);
        const data::Dataset val_raw = all.take(600), test_raw = all.skip(600).take(400), train_raw = all.skip(1000);
        auto prepared = [&](const data::Dataset& d) {
            data::Dataset m = d.map(Preprocess{});
            return o.feature_cache ? m : m.cache();
        };
        const auto train = prepared(train_raw).shuffle(1900, o.seed + 1).batch(o.batch_size).prefetch(2);
        const auto val = prepared(val_raw).batch(o.batch_size).prefetch(2);
        const auto test = test_raw.map(Preprocess{}).batch(o.batch_size).prefetch(2);

        // 6-8. the model; rank 0's weights are broadcast by fit anyway.
        Net net;
        net.build({224, 224, 3}, o.seed);
        io::load_mobilenet_v2_imagenet(net.layer<0>(), o.data / "weights");
        net.layer<0>().set_trainable(false);
        // Other dropout masks on every process (the same seed would repeat rank 0's masks).
        net.set_seed(Rng::derive(o.seed, static_cast<std::uint64_t>(comm.rank()))());
        if (root) std::cout << net.summary() << "\n";
        auto model = compile(net, Adam(1e-3f), CategoricalCrossentropy<>(), CategoricalAccuracy());

        // 9-10. data-parallel fit.
        distributed::DataParallelOptions dpo;
        dpo.sync_batchnorm = o.sync_batchnorm;
        distributed::DataParallel dp(comm, dpo);
        CollectBatchStats stats;
        CSVLogger csv(o.out / "history.csv");  // runs on rank 0 only (distributed::rank0_only)
        FitOptions fo;
        fo.epochs = o.epochs;
        fo.validation = &val;
        fo.feature_cache = o.feature_cache;
        const auto t_fit = std::chrono::steady_clock::now();
        const History history = dp.fit(model, train, fo, stats, csv);
        const double fit_seconds = seconds_since(t_fit);

        // Optional: fine-tune the top blocks, data-parallel (the backbone's gradients are
        // averaged in buckets; this is where the allreduce carries megabytes).
        double fine_tune_seconds = 0;
        if (o.fine_tune_epochs > 0) {
            net.layer<0>().unfreeze_from(o.from);
            net.layer<0>().set_batchnorm_mode(o.sync_batchnorm ? BatchNormMode::Auto : BatchNormMode::Frozen);
            auto tuned = compile(net, Adam(1e-4f), CategoricalCrossentropy<>(), CategoricalAccuracy());
            const auto tune = train_raw.map(Preprocess{}).map(data::RandomFlipLeftRight{}, o.seed + 7)
                                  .shuffle(1900, o.seed + 2).batch(o.batch_size).prefetch(2);
            LearningRateScheduler lrs(CosineDecay{1e-4f, o.fine_tune_epochs * tune.size(), 0.1f});
            FitOptions f2 = fo;
            f2.epochs = o.fine_tune_epochs;
            if (root)
                std::printf("\n== fine-tuning from block %zu: %zu trainable parameters\n", o.from,
                            net.parameter_counts()[1]);
            const auto t_ft = std::chrono::steady_clock::now();
            dp.fit(tuned, tune, f2, lrs);
            fine_tune_seconds = seconds_since(t_ft);
        }

        // 12. evaluate: each process its shard, the figures of the whole test set.
        const Logs result = distributed::evaluate(model, test, comm);
        // 14-15. predict everything (each process its shard), confusion matrix on rank 0.
        std::vector<float> probs;
        std::vector<std::int32_t> labels;
        predict_all(model, test, comm, probs, labels);

        if (root) {
            std::printf("\ntest: loss %.4f, accuracy %.4f (reference: loss 0.1487, accuracy 0.9675)\n", result["loss"],
                        result["accuracy"]);
            // 11. plots of the per-batch figures (averaged over the processes).
            report::LinePlot loss_plot;
            loss_plot.title("Loss per training batch").x_label("training step").y_label("loss").y_range(0, 2);
            loss_plot.add("loss", stats.losses);
            loss_plot.save_png(o.out / "loss.png");
            report::LinePlot acc_plot;
            acc_plot.title("Accuracy per training batch").x_label("training step").y_label("accuracy").y_range(0, 1);
            acc_plot.add("accuracy", stats.accuracies);
            acc_plot.save_png(o.out / "accuracy.png");

            report::ConfusionMatrix cm(3);
            for (std::size_t i = 0; i < labels.size(); ++i)
                cm.add(static_cast<std::size_t>(labels[i]), CategoricalAccuracy::argmax(probs.data() + 3 * i, 3));
            cm.title("Confusion matrix, re-split test set (" + std::to_string(cm.total()) + " images)");
            std::cout << "\n" << cm.to_string(names) << "(reference: [[142, 3, 0], [1, 131, 1], [0, 1, 121]])\n";
            cm.save_png(o.out / "confusion_matrix.png", names);

            // 16. save, load back, same predictions (rank 0 alone).
            io::SaveOptions so;
            so.meta["class_names"] = "rock,paper,scissors";
            so.meta["processes"] = std::to_string(comm.size());
            io::save_model(net, o.out / "model.tnet", so);
            Net loaded;
            io::load_model(loaded, o.out / "model.tnet");
            Tensor<4> first;
            for (auto it = test.begin_epoch(0); it != test.end(); ++it) {
                first = Tensor<4>(Shape<4>{std::min<std::size_t>(10, it->size()), 224, 224, 3});
                std::copy(it->images.data(), it->images.data() + first.size(), first.data());
                break;
            }
            const Tensor<2> before = net.forward(first);
            const Tensor<2> again = loaded.forward(first);
            if (!std::equal(before.begin(), before.end(), again.begin()))
                throw error("the reloaded model does not predict what the saved one did");

            const auto& gs = dp.gradient_stats();
            char json[1024];
            std::snprintf(json, sizeof json,
                          "{\n  \"processes\": %d,\n  \"global_batch\": %zu,\n  \"epochs\": %zu,\n  \"test_loss\": %.6g,\n"
                          "  \"test_accuracy\": %.6g,\n  \"final_val_accuracy\": %.6g,\n  \"fine_tune_epochs\": %zu,\n"
                          "  \"gradient_allreduce\": {\"steps\": %zu, \"bytes_per_step\": %zu, \"buckets_per_step\": %zu, "
                          "\"seconds\": %.6g},\n  \"seconds\": {\"fit\": %.6g, \"fine_tune\": %.6g, \"total\": %.6g}\n}\n",
                          comm.size(), o.batch_size, o.epochs, result["loss"], result["accuracy"],
                          history["val_accuracy"].empty() ? 0.0 : history["val_accuracy"].back(), o.fine_tune_epochs,
                          gs.steps, gs.bytes, gs.buckets, gs.seconds, fit_seconds, fine_tune_seconds, seconds_since(t0));
            write_text(o.out / "metrics.json", json);
            std::printf("\n%s\ndone in %.1f s; outputs in %s\n", json, seconds_since(t0), o.out.c_str());
        }
        comm.barrier();
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rock_paper_scissors_mpi: rank %d: %s\n", comm.rank(), e.what());
        comm.abort(1);  // the other processes may be waiting for this one
    }
}

#endif
