// bench_mobilenet: MobileNetV2 (width 1.0, 224x224, fp32, random weights) speed in typenet.
//
//     bench_mobilenet [--reps N] [--min-time SECONDS] [--peak GFLOPS] [--only NAME]
//
// Measures (each figure: warm-up, then N timed repetitions of at least --min-time
// seconds each; median, min and max; the share of repetitions during which other
// processes used more than a quarter of a core is reported as "busy"):
//   b1_t1     batch 1, 1 thread, inference latency
//   b1_t2     batch 1, 2 threads
//   b64_t2    batch 64, 2 threads, images/s (also the frozen-feature extraction rate:
//             the backbone without classifier, which is what the feature cache runs)
//   train_b32_t2   a full training step (forward + backward through every layer + Adam,
//             batch norm on batch statistics), batch 32, 2 threads, images/s
//   train_frozen_bn_b32_t2   the same step with the backbone's batch norm frozen (moving
//             statistics, gamma and beta fixed: fine-tuning a pretrained backbone as Keras
//             recommends; PyTorch's counterpart is bench_torch.py --mode finetune_evalbn)
//   layers    per-layer forward times at batch 64, 2 threads, with GFLOP/s and the share
//             of --peak (the measured fp32 FMA peak of the machine for 2 threads): each
//             layer repeated on its own input, and each layer's time within whole passes
//             of the chain ("in seq", where weights and inputs are not already in cache)
//   layers_b1 (only with --only layers_b1) the same at batch 1, 1 thread
//   train_layers  per-layer forward and backward times of a training step, batch 32, 2 threads
//   peak_rss_mb  the process's peak resident memory after the batch-64 inference runs
// Prints a human table on stderr and one JSON object on stdout (last line).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "typenet/typenet.hpp"

using namespace typenet;

namespace {
constexpr double gflop_per_image = 0.6015;  // MobileNetV2 1.0/224 forward (2 x multiply-adds)

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// CPU time used by all processes (from /proc/stat), to see whether others were busy.
double system_busy_seconds() {
    std::ifstream f("/proc/stat");
    std::string cpu;
    unsigned long long user = 0, nice = 0, sys = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    f >> cpu >> user >> nice >> sys >> idle >> iowait >> irq >> softirq >> steal;
    return static_cast<double>(user + nice + sys + irq + softirq) / static_cast<double>(sysconf(_SC_CLK_TCK));
}
double self_cpu_seconds() {
    rusage r{};
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_utime.tv_usec * 1e-6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec * 1e-6;
}

struct Stat {
    double median = 0, min = 0, max = 0;
    int reps = 0, busy = 0;
};

// Seconds per call of `fn`: warm-up, then `reps` repetitions of >= min_time each.
Stat time_it(const std::function<void()>& fn, int reps, double min_time) {
    const double w0 = now();
    int warm = 0;
    while (warm < 2 || now() - w0 < std::min(1.0, min_time)) fn(), ++warm;
    const double per = (now() - w0) / warm;
    const int calls = std::max(1, static_cast<int>(min_time / std::max(per, 1e-6)));
    std::vector<double> t;
    Stat s;
    for (int r = 0; r < reps; ++r) {
        const double sys0 = system_busy_seconds(), self0 = self_cpu_seconds(), t0 = now();
        for (int c = 0; c < calls; ++c) fn();
        const double dt = now() - t0;
        const double others = (system_busy_seconds() - sys0) - (self_cpu_seconds() - self0);
        if (others > 0.25 * dt) ++s.busy;
        t.push_back(dt / calls);
    }
    std::sort(t.begin(), t.end());
    s.median = t[t.size() / 2];
    s.min = t.front();
    s.max = t.back();
    s.reps = reps;
    return s;
}

std::string json_stat(const Stat& s, double scale) {
    char b[160];
    std::snprintf(b, sizeof b, "{\"median\": %.4f, \"min\": %.4f, \"max\": %.4f, \"reps\": %d, \"busy_reps\": %d}", s.median * scale,
                  s.min * scale, s.max * scale, s.reps, s.busy);
    return b;
}

double peak_rss_mb() {
    rusage r{};
    getrusage(RUSAGE_SELF, &r);
    return r.ru_maxrss / 1024.0;
}

// Multiply-adds of the convolutions in one layer of the backbone's chain (forward), from the shapes.
template <class Slot>
double layer_macs(Slot& layer, const Shape<4>& in, const Shape<4>& out) {
    using L = std::remove_cvref_t<decltype(layer.get())>;
    if constexpr (requires { layer.residual(); }) {
        const double hw_in = double(in[0]) * in[1] * in[2], hw_out = double(out[0]) * out[1] * out[2];
        const double cin = double(in[3]), cexp = cin * (L::has_expand ? 6.0 : 1.0);
        return (L::has_expand ? hw_in * cin * cexp : 0.0) + hw_out * cexp * 9.0 + hw_out * cexp * double(out[3]);
    } else if constexpr (requires { layer.out_channels(); }) {
        const double hw_out = double(out[0]) * out[1] * out[2];
        const auto k = layer.spec().kernel;
        return hw_out * double(out[3]) * double(in[3]) * double(k * k);
    } else {
        return 0.0;
    }
}

using Backbone = models::MobileNetV2<>;
using Trainer = Sequential<models::MobileNetV2<>, Dense<1000, Softmax>>;

// FLOPs of the layers of the backbone's chain at batch n, 224x224 (2 x multiply-adds).
struct LayerRow {
    std::string name, kind;
    double gflop = 0, seconds = 0;
};
}  // namespace

int main(int argc, char** argv) {
    int reps = 5;
    double min_time = 1.0, peak = 0;
    std::string only;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
        else if (a == "--min-time" && i + 1 < argc) min_time = std::atof(argv[++i]);
        else if (a == "--peak" && i + 1 < argc) peak = std::atof(argv[++i]);
        else if (a == "--only" && i + 1 < argc) only = argv[++i];
        else {
            std::fprintf(stderr, "usage: bench_mobilenet [--reps N] [--min-time S] [--peak GFLOPS] [--only b1|b64|layers|layers_b1|train_layers|train|train_frozen]\n");
            return 2;
        }
    }
    auto want = [&](const char* k) { return only.empty() || only == k; };
    std::ostringstream json;
    json << "{\"tool\": \"typenet\", \"version\": \"" << TYPENET_VERSION_STRING << "\", \"simd_arch\": \""
         << typenet::kernels::simd_arch::name() << "\", \"gflop_per_image\": " << gflop_per_image;
    Rng rng(1);

    Backbone net;
    net.build(224, 1);
    if (want("b1")) {
        Tensor<4> x = random_tensor<4>({1, 224, 224, 3}, rng, 0, 1);
        for (int threads : {1, 2}) {
            set_num_threads(threads);
            const Stat s = time_it([&] { net.forward(x); }, reps, min_time);
            std::fprintf(stderr, "batch 1, %d thread(s): %.2f ms (min %.2f, max %.2f)\n", threads, s.median * 1e3,
                         s.min * 1e3, s.max * 1e3);
            json << ", \"b1_t" << threads << "_ms\": " << s.median * 1e3 << ", \"b1_t" << threads << "\": " << json_stat(s, 1e3);
        }
    }
    if (want("b64")) {
        set_num_threads(2);
        Tensor<4> x = random_tensor<4>({64, 224, 224, 3}, rng, 0, 1);
        const Stat s = time_it([&] { net.forward(x); }, reps, min_time);
        const double ips = 64 / s.median;
        std::fprintf(stderr, "batch 64, 2 threads: %.1f images/s (%.1f GFLOP/s)\n", ips, ips * gflop_per_image);
        json << ", \"b64_t2_img_s\": " << ips << ", \"b64_t2_seconds\": " << json_stat(s, 1.0)
             << ", \"b64_t2_gflops\": " << ips * gflop_per_image;
        json << ", \"peak_rss_mb_after_b64_inference\": " << peak_rss_mb();
        std::fprintf(stderr, "peak memory after batch-64 inference: %.0f MB\n", peak_rss_mb());
    }
    // Per-layer forward times on the backbone's chain at `batch` images, `threads` threads.
    auto layer_table = [&](std::size_t batch, int threads, const char* key) {
        set_num_threads(threads);
        auto& chain = net.net();
        Tensor<4> x = random_tensor<4>({batch, 224, 224, 3}, rng, 0, 1);
        std::vector<LayerRow> rows;
        Scratch scratch;
        Context ctx;
        ctx.training = false;
        ctx.trainable = false;
        ctx.backward = false;
        ctx.input_gradient = false;
        ctx.scratch = &scratch;
        Tensor<4> cur = x, nxt;
        std::size_t index = 0;
        chain.for_each_layer([&](auto& layer) {
            using L = std::remove_cvref_t<decltype(layer.get())>;
            const std::string name = chain.layer_name(index++);
            if constexpr (L::output_rank == 4) {
                nxt.resize(layer.output_shape(shape_of(cur)));
                const Stat s = time_it([&] { layer.forward(cur, nxt, ctx); }, std::max(3, reps / 2), min_time / 4);
                rows.push_back({name, base_type_name<L>(), 2 * layer_macs(layer, shape_of(cur), shape_of(nxt)) * 1e-9, s.median});
                std::swap(cur, nxt);
            }
        });
        // The same layers in sequence, as a whole forward runs them: each layer's weights
        // and input are wherever the previous layers left them (at batch 1 the weights come
        // from L3 each time, not from L2 as in the repeated timing above). Per layer, the
        // median over whole passes.
        std::vector<Tensor<4>> outs(rows.size());
        std::vector<std::vector<double>> seq(rows.size());
        const double s0 = now();
        for (int pass = 0; pass < 2 || (pass < 200 && now() - s0 < 4 * min_time); ++pass) {
            const Tensor<4>* in = &x;
            std::size_t li = 0;
            chain.for_each_layer([&](auto& layer) {
                using L = std::remove_cvref_t<decltype(layer.get())>;
                if constexpr (L::output_rank == 4) {
                    Tensor<4>& o = outs[li];
                    o.resize(layer.output_shape(shape_of(*in)));  // same shape: no reallocation
                    const double t0 = now();
                    layer.forward(*in, o, ctx);
                    if (pass > 0) seq[li].push_back(now() - t0);  // pass 0 warms up
                    in = &o;
                    ++li;
                }
            });
        }
        std::vector<double> in_seq(rows.size());
        for (std::size_t i = 0; i < rows.size(); ++i) {
            auto& v = seq[i];
            std::nth_element(v.begin(), v.begin() + long(v.size() / 2), v.end());
            in_seq[i] = v[v.size() / 2];
        }
        double total = 0, total_seq = 0;
        for (const auto& r : rows) total += r.seconds;
        for (double t : in_seq) total_seq += t;
        const double pk = peak * threads / 2;  // --peak is for 2 threads
        json << ", \"" << key << "\": [";
        std::fprintf(stderr, "\nbatch %zu, %d thread(s)\n%-22s %-18s %9s %9s %8s %7s %10s\n", batch, threads, "layer", "type",
                     "ms", "GFLOP/s", "% time", "% peak", "in seq ms");
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const auto& r = rows[i];
            const double gfs = r.gflop / r.seconds;
            // The share of peak needs --peak (compare.sh measures it); without, "-" and null.
            char share[16] = "      -";
            if (pk > 0) std::snprintf(share, sizeof share, "%6.1f%%", 100 * gfs / pk);
            std::fprintf(stderr, "%-22s %-18s %9.3f %9.1f %7.1f%% %s %10.3f\n", r.name.c_str(), r.kind.c_str(),
                         r.seconds * 1e3, gfs, 100 * r.seconds / total, share, in_seq[i] * 1e3);
            json << (i ? ", " : "") << "{\"layer\": \"" << r.name << "\", \"type\": \"" << r.kind << "\", \"ms\": " << r.seconds * 1e3
                 << ", \"gflops\": " << gfs << ", \"share_of_peak\": ";
            if (pk > 0) json << gfs / pk;
            else json << "null";
            json << ", \"in_sequence_ms\": " << in_seq[i] * 1e3 << "}";
        }
        json << "], \"" << key << "_total_ms\": " << total * 1e3 << ", \"" << key << "_in_sequence_total_ms\": " << total_seq * 1e3;
        std::fprintf(stderr, "%-22s %-18s %9.3f %9s %8s %7s %10.3f\n", "total", "", total * 1e3, "", "", "", total_seq * 1e3);
    };
    if (want("layers")) layer_table(64, 2, "layers_b64_t2");
    if (only == "layers_b1") layer_table(1, 1, "layers_b1_t1");
    if (want("train_layers")) {
        // Where a training step's time goes: each layer of the backbone's chain, forward
        // (batch statistics, keeping what backward needs) and backward (weight and input
        // gradients), batch 32, 2 threads. Backward does about twice the forward's FLOPs.
        set_num_threads(2);
        auto& chain = net.net();
        Scratch scratch;
        Context ctx;
        ctx.training = true;
        ctx.scratch = &scratch;
        Tensor<4> cur = random_tensor<4>({32, 224, 224, 3}, rng, 0, 1), nxt, dy, dx;
        std::size_t index = 0;
        double total_f = 0, total_b = 0;
        json << ", \"train_layers_b32_t2\": [";
        std::fprintf(stderr, "\n%-22s %-18s %9s %9s %9s %9s\n", "layer (training)", "type", "fwd ms", "fwd GF/s", "bwd ms",
                     "bwd GF/s");
        chain.for_each_layer([&](auto& layer) {
            using L = std::remove_cvref_t<decltype(layer.get())>;
            const std::string name = chain.layer_name(index++);
            if constexpr (L::output_rank == 4) {
                nxt.resize(layer.output_shape(shape_of(cur)));
                const Stat f = time_it([&] { layer.forward(cur, nxt, ctx); }, 3, 0.0);
                dy = random_tensor<4>(shape_of(nxt), rng, -1, 1);
                dx.resize(shape_of(cur));
                // As in a training step, the first layer computes no input gradient.
                Tensor<4>* dxp = index == 1 ? nullptr : &dx;
                const Stat b = time_it([&] { layer.backward(cur, nxt, dy, dxp, ctx); }, 3, 0.0);
                const double gf = 2 * layer_macs(layer, shape_of(cur), shape_of(nxt)) * 1e-9;
                std::fprintf(stderr, "%-22s %-18s %9.1f %9.1f %9.1f %9.1f\n", name.c_str(), base_type_name<L>().c_str(),
                             f.median * 1e3, gf / f.median, b.median * 1e3, 2 * gf / b.median);
                json << (total_f > 0 ? ", " : "") << "{\"layer\": \"" << name << "\", \"forward_ms\": " << f.median * 1e3
                     << ", \"backward_ms\": " << b.median * 1e3 << ", \"forward_gflop\": " << gf << "}";
                total_f += f.median;
                total_b += b.median;
                std::swap(cur, nxt);
            }
        });
        json << "], \"train_layers_forward_ms\": " << total_f * 1e3 << ", \"train_layers_backward_ms\": " << total_b * 1e3;
        std::fprintf(stderr, "%-22s %-18s %9.1f %9s %9.1f\n", "total", "", total_f * 1e3, "", total_b * 1e3);
    }
    // A training step of the whole network, batch 32, 2 threads: batch norm on batch
    // statistics ("train"), or frozen in the backbone ("train_frozen").
    auto train = [&](bool frozen_bn, const char* key, const char* what) {
        set_num_threads(2);
        Trainer t;
        t.build({224, 224, 3}, 2);
        if (frozen_bn) t.layer<0>().set_batchnorm_mode(BatchNormMode::Frozen);
        Adam opt;
        CategoricalCrossentropy<> loss;
        Tensor<4> x = random_tensor<4>({32, 224, 224, 3}, rng, 0, 1);
        Tensor<2> y = zeros<2>({32, 1000});
        for (std::size_t i = 0; i < 32; ++i) y(i, (i * 37) % 1000) = 1;
        const Stat s = time_it([&] { train_step(t, loss, opt, x, y); }, std::max(3, reps), min_time);
        const double ips = 32 / s.median;
        std::fprintf(stderr, "%s, batch 32, 2 threads: %.1f images/s (%.0f ms/step)\n", what, ips, s.median * 1e3);
        json << ", \"" << key << "_img_s\": " << ips << ", \"" << key << "_seconds\": " << json_stat(s, 1.0);
    };
    if (want("train")) {
        train(false, "train_b32_t2", "training step");
        json << ", \"peak_rss_mb_after_training\": " << peak_rss_mb();
    }
    if (want("train_frozen")) train(true, "train_frozen_bn_b32_t2", "training step, batch norm frozen");
    json << "}";
    std::printf("%s\n", json.str().c_str());
    return 0;
}
