// Kernel benchmark: every distinct 1x1 / depthwise / stem layer shape of MobileNetV2
// (224x224, width 1.0) at batch 1 and 64 with 1 and 2 threads (forward), the backward
// kernels at batch 32 (2 threads), the fused inverted-residual blocks against the
// unfused sequence (and the stem fused with block 0 against the two kernels), and the
// gemm micro-kernel on one band of the 1x1 shapes with its data in cache. Prints one
// JSON object.
//
// Usage: bench_kernels [--peak GFLOPS_PER_CORE] [--quick] [--only forward|backward|interior|tiles|fused]
//   --peak   per-core fp32 FMA peak used for "share" (default: measured here with an
//            xsimd FMA loop; /work/shared/peers/cpp/fma_peak.cpp gives ~172 GFLOP/s)
//   --quick  batch 64 replaced by batch 8 and fewer repetitions (a smoke run)
// FLOP counts: 2 per multiply-add; depthwise 2*9 per output element.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "fma_loop.hpp"
#include "typenet/core/random.hpp"
#include "typenet/kernels/conv2d.hpp"
#include "typenet/kernels/depthwise.hpp"
#include "typenet/kernels/elementwise.hpp"
#include "typenet/kernels/gemm.hpp"
#include "typenet/kernels/inverted_residual.hpp"

using namespace typenet::kernels;

namespace {

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ---- background load: the machine is shared, so every measurement checks how much
// CPU other processes used meanwhile (/proc/stat minus this process's own time).
double system_busy_seconds() {
    FILE* f = std::fopen("/proc/stat", "r");
    if (!f) return 0;
    unsigned long long user = 0, nice = 0, sys = 0, idle = 0, iowait = 0, irq = 0, softirq = 0;
    const int got = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle, &iowait, &irq,
                                &softirq);
    std::fclose(f);
    if (got != 7) return 0;
    return double(user + nice + sys + irq + softirq) / double(sysconf(_SC_CLK_TCK));
}

double own_cpu_seconds() {
    rusage r{};
    getrusage(RUSAGE_SELF, &r);
    return double(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + 1e-6 * double(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
}

struct LoadProbe {
    double sys0 = 0, own0 = 0, t0 = 0;
    void start() {
        sys0 = system_busy_seconds();
        own0 = own_cpu_seconds();
        t0 = now();
    }
    // Cores used by other processes since start().
    double others() const {
        const double dt = now() - t0;
        if (dt <= 0) return 0;
        const double v = (system_busy_seconds() - sys0 - (own_cpu_seconds() - own0)) / dt;
        return v < 0 ? 0 : v;
    }
};

double g_waited = 0;          // seconds spent waiting for quiet, over the whole run
const double kMaxWait = 300;  // give up waiting after this much in total

// Wait (bounded) until other processes use less than `gate` cores.
void wait_quiet(double gate, double max_wait = 10.0) {
    const double t0 = now();
    while (now() - t0 < max_wait && g_waited + (now() - t0) < kMaxWait) {
        LoadProbe p;
        p.start();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        if (p.others() < gate) break;
    }
    g_waited += now() - t0;
}

int g_threads = 1;       // threads of the current measurement (for the quiet gate)
double g_last_load = 0;  // other processes' load during the last measurement (cores)

// Median time of `f` over enough repetitions (at least 3, about `budget` seconds),
// repeated (up to 3 times) when other processes used more than the gate meanwhile.
template <class F>
double time_median(F&& f, double budget = 0.25, int min_reps = 3, int max_reps = 40) {
    const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    const double gate = std::max(0.25, double(ncpu) - g_threads - 0.25);
    double best_t = 0, best_load = 1e9;
    for (int attempt = 0; attempt < 3; ++attempt) {
        wait_quiet(gate);
        double t0 = now();
        f();  // warm-up (also first touch of workspaces)
        const double first = now() - t0;
        int reps = first > 0 ? int(budget / first) : max_reps;
        reps = std::clamp(reps, min_reps, max_reps);
        std::vector<double> ts;
        LoadProbe probe;
        probe.start();
        for (int r = 0; r < reps; ++r) {
            t0 = now();
            f();
            ts.push_back(now() - t0);
        }
        const double load = probe.others();
        std::sort(ts.begin(), ts.end());
        // A median far above the minimum means a thread was descheduled for part of
        // the run (2 vCPUs shared with other jobs): count it as disturbed.
        const bool steady = ts[ts.size() / 2] < 1.5 * ts[0] + 20e-6;
        const double score = load + (steady ? 0.0 : 1.0);
        if (score < best_load) {
            best_load = score;
            best_t = ts[ts.size() / 2];
        }
        if (load < gate && steady) break;
    }
    g_last_load = best_load;  // other processes' cores, +1 when the times were unsteady
    return best_t;
}

// fp32 FMA peak of this build's SIMD width on `threads` threads (GFLOP/s): best of 5.
double measure_peak(int threads) {
    const long iters = 20000000;
    std::vector<double> best;
    volatile float sink = 0;
    for (int rep = 0; rep < 5; ++rep) {
        wait_quiet(threads >= 2 ? 0.25 : 0.75);
        const double t0 = now();
        typenet::kernels::run_parallel(threads, [&](int t, int) { sink = sink + bench::fma_chains(iters, 1.0f + float(t)); });
        best.push_back(bench::fma_chains_flops(iters) * threads / (now() - t0) / 1e9);
    }
    std::sort(best.begin(), best.end());
    return best.back();
}

struct Buf {
    AlignedBuffer b;
    std::size_t n = 0;
    float* get(std::size_t count, std::uint64_t seed) {
        float* p = b.get(count);
        if (count > n) {
            typenet::Rng rng(seed);
            for (std::size_t i = 0; i < count; ++i) p[i] = rng.uniform(-1.0f, 1.0f);
            n = count;
        }
        return p;
    }
};

Buf bx, by, bw, bz, bb;  // input, output, weights, extra (gradients), bias

std::string json_str(const std::string& s) { return "\"" + s + "\""; }

struct Row {
    std::string json;
};

// The distinct layer shapes of MobileNetV2 1.0 / 224 and how often each occurs.
struct Pointwise {
    std::size_t hw, cin, cout, count;
};
struct Depthwise {
    std::size_t hw, c, stride, count;  // hw: input extent
};
const Pointwise kPointwise[] = {
    {112, 32, 16, 1},  {112, 16, 96, 1},  {56, 96, 24, 1},  {56, 24, 144, 2},  {56, 144, 24, 1},
    {28, 144, 32, 1},  {28, 32, 192, 3},  {28, 192, 32, 2}, {14, 192, 64, 1},  {14, 64, 384, 4},
    {14, 384, 64, 3},  {14, 384, 96, 1},  {14, 96, 576, 3}, {14, 576, 96, 2},  {7, 576, 160, 1},
    {7, 160, 960, 3},  {7, 960, 160, 2},  {7, 960, 320, 1}, {7, 320, 1280, 1},
};
const Depthwise kDepthwise[] = {
    {112, 32, 1, 1}, {112, 96, 2, 1}, {56, 144, 1, 1}, {56, 144, 2, 1}, {28, 192, 1, 2},
    {28, 192, 2, 1}, {14, 384, 1, 4}, {14, 576, 1, 2}, {14, 576, 2, 1}, {7, 960, 1, 3},
};

struct Totals {
    double flops = 0, seconds = 0;
};

std::string fmt(double v, int prec = 4) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    return buf;
}

}  // namespace

int main(int argc, char** argv) {
    double peak1 = 0;
    bool quick = false;
    std::string only;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--peak" && i + 1 < argc)
            peak1 = std::atof(argv[++i]);
        else if (a == "--quick")
            quick = true;
        else if (a == "--only" && i + 1 < argc)
            only = argv[++i];
        else {
            std::fprintf(stderr, "usage: %s [--peak GFLOPS_PER_CORE] [--quick] [--only forward|backward|interior|tiles|fused]\n",
                         argv[0]);
            return 2;
        }
    }
    const std::size_t big = quick ? 8 : 64, bwd_batch = quick ? 4 : 32;
    const double budget = quick ? 0.05 : 0.25;
    std::string peak_source = "argument";
    double peak_measured1 = measure_peak(1), peak_measured2 = measure_peak(2);
    if (peak1 <= 0) {
        peak1 = peak_measured1;
        peak_source = "measured (xsimd FMA loop, best of 5)";
    }

    std::string out = "{\n  \"simd_width\": " + std::to_string(simd_width) + ",\n  \"peak\": {\"per_core_gflops\": " +
                      fmt(peak1) + ", \"source\": " + json_str(peak_source) + ", \"measured_1_thread\": " +
                      fmt(peak_measured1) + ", \"measured_2_threads\": " + fmt(peak_measured2) + "},\n";

    std::map<std::string, Totals> totals;  // key: type/batch/threads, network-weighted
    std::vector<std::string> rows;
    auto add_row = [&](const std::string& type, const std::string& shape, std::size_t batch, int threads, double sec,
                       double flops, std::size_t count) {
        const double gf = flops / sec / 1e9;
        rows.push_back("    {\"type\": " + json_str(type) + ", \"shape\": " + json_str(shape) +
                       ", \"batch\": " + std::to_string(batch) + ", \"threads\": " + std::to_string(threads) +
                       ", \"count\": " + std::to_string(count) + ", \"ms\": " + fmt(sec * 1e3) + ", \"gflops\": " +
                       fmt(gf) + ", \"share_of_peak\": " + fmt(gf / (peak1 * threads), 3) +
                       ", \"others_load\": " + fmt(g_last_load, 2) + "}");
        auto& t = totals[type + "/b" + std::to_string(batch) + "/t" + std::to_string(threads)];
        t.flops += flops * double(count);
        t.seconds += sec * double(count);
    };

    // ------------------------------------------------------------------ forward
    if (only.empty() || only == "forward") {
        for (std::size_t batch : {std::size_t(1), big})
            for (int threads : {1, 2}) {
                typenet::set_num_threads(threads);
                g_threads = threads;
                // Stem: 3x3 stride 2, 3 -> 32, SAME.
                {
                    const auto g = ConvGeometry::same(batch, 224, 224, 3, 3, 3, 2, 2);
                    float* x = bx.get(g.input_size(), 1);
                    float* w = bw.get(27 * 32, 2);
                    float* b = bb.get(1280, 3);
                    float* y = by.get(g.output_pixels() * 32, 4);
                    const Epilogue ep = bias_relu6(b);
                    const double t = time_median([&] { conv2d_forward(g, 32, x, w, y, ep); }, budget);
                    add_row("stem", "224x224x3->32 s2", batch, threads, t, 2.0 * g.output_pixels() * 27 * 32, 1);
                }
                for (const auto& d : kDepthwise) {
                    const auto g = ConvGeometry::same(batch, d.hw, d.hw, d.c, 3, 3, d.stride, d.stride);
                    float* x = bx.get(g.input_size(), 1);
                    float* w = bw.get(9 * d.c, 2);
                    float* b = bb.get(1280, 3);
                    float* y = by.get(g.output_pixels() * d.c, 4);
                    const Epilogue ep = bias_relu6(b);
                    const double t = time_median([&] { depthwise_forward(g, x, w, y, ep); }, budget);
                    add_row("depthwise", std::to_string(d.hw) + "x" + std::to_string(d.hw) + "x" + std::to_string(d.c) +
                                             " s" + std::to_string(d.stride),
                            batch, threads, t, 18.0 * g.output_pixels() * d.c, d.count);
                }
                for (const auto& p : kPointwise) {
                    const std::size_t M = batch * p.hw * p.hw;
                    float* x = bx.get(M * p.cin, 1);
                    float* w = bw.get(p.cin * p.cout, 2);
                    float* b = bb.get(1280, 3);
                    float* y = by.get(M * p.cout, 4);
                    // Expansions end in ReLU6; projections are linear.
                    Epilogue ep = p.cout > p.cin ? bias_relu6(b) : bias_clamp(b);
                    const double t = time_median(
                        [&] { gemm(Trans::No, Trans::No, M, p.cout, p.cin, x, p.cin, w, p.cout, y, p.cout, ep); }, budget);
                    add_row("pointwise", std::to_string(p.hw) + "x" + std::to_string(p.hw) + " " +
                                             std::to_string(p.cin) + "->" + std::to_string(p.cout),
                            batch, threads, t, 2.0 * M * p.cin * p.cout, p.count);
                    if (batch == 1) {
                        // Weights packed once (what an inference layer keeps).
                        PackedMatrix pw;
                        pw.pack(Trans::No, p.cin, p.cout, w, p.cout);
                        const double tp =
                            time_median([&] { gemm(Trans::No, M, x, p.cin, pw, y, p.cout, ep); }, budget);
                        add_row("pointwise_prepacked", std::to_string(p.hw) + "x" + std::to_string(p.hw) + " " +
                                                           std::to_string(p.cin) + "->" + std::to_string(p.cout),
                                batch, threads, tp, 2.0 * M * p.cin * p.cout, p.count);
                    }
                }
            }
    }

    // ------------------------------------------------------------------ backward
    if (only.empty() || only == "backward") {
        const std::size_t batch = bwd_batch;
        const int threads = 2;
        typenet::set_num_threads(threads);
        g_threads = threads;
        {
            const auto g = ConvGeometry::same(batch, 224, 224, 3, 3, 3, 2, 2);
            float* x = bx.get(g.input_size(), 1);
            float* dy = by.get(g.output_pixels() * 32, 4);
            float* dw = bw.get(27 * 32, 2);
            const double t = time_median([&] { conv2d_backward_weight(g, 32, x, dy, dw); }, budget);
            add_row("stem_bwd_weight", "224x224x3->32 s2", batch, threads, t, 2.0 * g.output_pixels() * 27 * 32, 1);
        }
        for (const auto& d : kDepthwise) {
            const auto g = ConvGeometry::same(batch, d.hw, d.hw, d.c, 3, 3, d.stride, d.stride);
            const std::string shape =
                std::to_string(d.hw) + "x" + std::to_string(d.hw) + "x" + std::to_string(d.c) + " s" + std::to_string(d.stride);
            float* x = bx.get(g.input_size(), 1);
            float* dy = by.get(g.output_pixels() * d.c, 4);
            float* w = bw.get(9 * d.c, 2);
            float* dx = bz.get(g.input_size(), 5);
            const double flops = 18.0 * g.output_pixels() * d.c;
            double t = time_median([&] { depthwise_backward_input(g, dy, w, dx); }, budget);
            add_row("depthwise_bwd_input", shape, batch, threads, t, flops, d.count);
            t = time_median([&] { depthwise_backward_weight(g, x, dy, w); }, budget);
            add_row("depthwise_bwd_weight", shape, batch, threads, t, flops, d.count);
        }
        for (const auto& p : kPointwise) {
            const std::size_t M = batch * p.hw * p.hw;
            const std::string shape =
                std::to_string(p.hw) + "x" + std::to_string(p.hw) + " " + std::to_string(p.cin) + "->" + std::to_string(p.cout);
            float* x = bx.get(M * p.cin, 1);
            float* dy = by.get(M * p.cout, 4);
            float* w = bw.get(p.cin * p.cout, 2);
            float* dx = bz.get(M * p.cin, 5);
            const double flops = 2.0 * M * p.cin * p.cout;
            // dX = dY W^T
            double t = time_median(
                [&] { gemm(Trans::No, Trans::Yes, M, p.cin, p.cout, dy, p.cout, w, p.cout, dx, p.cin); }, budget);
            add_row("pointwise_bwd_input", shape, batch, threads, t, flops, p.count);
            // dW = X^T dY
            t = time_median([&] { gemm(Trans::Yes, Trans::No, p.cin, p.cout, M, x, p.cin, dy, p.cout, w, p.cout); },
                            budget);
            add_row("pointwise_bwd_weight", shape, batch, threads, t, flops, p.count);
        }
    }

    // ------------------------------------------------------- depthwise interior sweep
    // The 3x3 stride-1 interior (`dw_interior_s1`, two output rows, bias + ReLU6), the
    // whole of a depthwise layer's work but its borders, on two output rows of width `w`
    // (four input rows) swept channel vector by channel vector and repeated: with channels
    // few enough for the rows to stay in L1, and with the network's channel counts, where
    // they come from L2. The gap between the two is what the memory hierarchy costs the
    // depthwise layers (one thread; not counted in the summary).
    std::vector<std::string> interior_rows;
    if (only.empty() || only == "interior") {
        typenet::set_num_threads(1);
        g_threads = 1;
        struct Sweep {
            std::size_t w, c;
        };
        const Sweep sweeps[] = {{66, 16}, {34, 32}, {66, 32}, {66, 64}, {14, 576}, {28, 192}, {14, 384}, {56, 144}};
        constexpr std::size_t pairs = 1, W = simd_width;
        for (const auto& sw : sweeps) {
            const std::size_t rowlen = sw.w * sw.c, in_rows = 2 * pairs + 2;
            float* x = bx.get(in_rows * rowlen, 1);
            float* w = bw.get(9 * sw.c, 2);
            float* b = bb.get(sw.c, 3);
            float* y = by.get(2 * pairs * rowlen, 4);
            const typenet::kernels::detail::Interior in{1, sw.w - 1};
            const std::size_t cols = (sw.w - 2) / typenet::kernels::detail::dw_cols * typenet::kernels::detail::dw_cols;
            const double flops = 18.0 * 2 * pairs * cols * (sw.c / W * W);
            const int reps = std::max(1, int(4e6 / flops));  // a sweep alone is too short to time
            const double t = time_median(
                [&] {
                    for (int rep = 0; rep < reps; ++rep) {
                        for (std::size_t p = 0; p < pairs; ++p) {
                            const float* r = x + 2 * p * rowlen;
                            const float* xr[6] = {r,          r + rowlen,     r + 2 * rowlen,
                                                  r + rowlen, r + 2 * rowlen, r + 3 * rowlen};
                            float* yr[2] = {y + 2 * p * rowlen, y + (2 * p + 1) * rowlen};
                            for (std::size_t c0 = 0; c0 + W <= sw.c; c0 += W)
                                typenet::kernels::detail::dw_interior_s1<2>(xr, w, b, yr, true, 0.0f, 6.0f, in, sw.c,
                                                                            1, c0, {});
                        }
                    }
                },
                budget) / reps;
            const double kb = (in_rows + 2 * pairs) * rowlen * 4.0 / 1024;
            interior_rows.push_back("    {\"shape\": " + json_str(std::to_string(sw.w) + "x" + std::to_string(sw.c)) +
                                    ", \"data_kb\": " + fmt(kb) + ", \"gflops\": " + fmt(flops / t / 1e9) +
                                    ", \"share_of_peak\": " + fmt(flops / t / 1e9 / peak1, 3) + "}");
        }
    }

    // ------------------------------------------------------------------ gemm tiles
    // The 1x1 products of MobileNetV2's first blocks (and two wide references) on one band
    // of 896 rows (8 image rows of 112 pixels, about what a band of the fused inference
    // block holds), prepacked weights, the block's epilogue (bias, + ReLU6 after an
    // expansion, + the residual where the block has one), repeated on the same data: what
    // the micro-kernel and its epilogue do with the operands in L1/L2 and no memory
    // traffic. Narrow N (16, 24) and shallow K (16, 24) are where the tiles are least full.
    // One thread; not counted in the summary.
    std::vector<std::string> tile_rows;
    if (only.empty() || only == "tiles") {
        typenet::set_num_threads(1);
        g_threads = 1;
        struct TileShape {
            std::size_t k, n;
            bool relu6, residual;
        };
        const TileShape shapes[] = {{32, 16, false, false},  {16, 96, true, false},  {96, 24, false, false},
                                    {24, 144, true, false},  {144, 24, false, true}, {144, 32, false, false},
                                    {32, 192, true, false},  {192, 64, false, false}, {576, 160, false, false}};
        constexpr std::size_t M = 896;
        for (const auto& ts : shapes) {
            const float* x = bx.get(M * ts.k, 1);
            float* y = by.get(M * ts.n, 4);
            const float* r = bz.get(M * ts.n, 5);
            PackedMatrix pw;
            pw.pack(Trans::No, ts.k, ts.n, bw.get(ts.k * ts.n, 2), ts.n);
            Epilogue ep;
            ep.bias = bb.get(ts.n, 3);
            if (ts.relu6) {
                ep.lo = 0.0f;
                ep.hi = 6.0f;
            }
            if (ts.residual) ep.residual = r;
            const double flops = 2.0 * double(M) * double(ts.k) * double(ts.n);
            const int reps = std::max(1, int(2e7 / flops));
            const double t =
                time_median([&] { for (int rep = 0; rep < reps; ++rep) gemm(Trans::No, M, x, ts.k, pw, y, ts.n, ep); },
                            budget) / reps;
            const std::string shape = std::to_string(M) + "x" + std::to_string(ts.k) + "->" + std::to_string(ts.n) +
                                      (ts.relu6 ? " relu6" : "") + (ts.residual ? " +res" : "");
            tile_rows.push_back("    {\"shape\": " + json_str(shape) + ", \"us\": " + fmt(t * 1e6) +
                                ", \"gflops\": " + fmt(flops / t / 1e9) + ", \"share_of_peak\": " +
                                fmt(flops / t / 1e9 / peak1, 3) + "}");
        }
    }

    // ------------------------------------------------------------------ fused blocks
    std::vector<std::string> fused_rows;
    if (only.empty() || only == "fused") {
        struct Block {
            std::size_t hw, cin, t, cout, stride, count;
        };
        // MobileNetV2 blocks (input extent, channels in, expansion, channels out, stride).
        const Block blocks[] = {
            {112, 32, 1, 16, 1, 1}, {112, 16, 6, 24, 2, 1}, {56, 24, 6, 24, 1, 1},  {56, 24, 6, 32, 2, 1},
            {28, 32, 6, 32, 1, 2},  {28, 32, 6, 64, 2, 1},  {14, 64, 6, 64, 1, 3},  {14, 64, 6, 96, 1, 1},
            {14, 96, 6, 96, 1, 2},  {14, 96, 6, 160, 2, 1}, {7, 160, 6, 160, 1, 2}, {7, 160, 6, 320, 1, 1},
        };
        for (auto [batch, threads] : {std::pair<std::size_t, int>{1, 1}, {1, 2}, {big, 2}}) {
            typenet::set_num_threads(threads);
            g_threads = threads;
            double tf_sum = 0, tpk_sum = 0, tu_sum = 0, fl_sum = 0;
            for (const auto& bk : blocks) {
                const bool expand = bk.t != 1;
                const std::size_t ce = bk.cin * bk.t;
                const auto g = ConvGeometry::same(batch, bk.hw, bk.hw, ce, 3, 3, bk.stride, bk.stride);
                const std::size_t in_px = batch * bk.hw * bk.hw, out_px = g.output_pixels();
                const bool residual = bk.stride == 1 && bk.cin == bk.cout;
                float* x = bx.get(in_px * bk.cin, 1);
                float* y = by.get(out_px * bk.cout, 4);
                float* w = bw.get(bk.cin * ce + 9 * ce + ce * bk.cout, 2);
                float* b = bb.get(3 * 1280 + 2 * 960, 3);
                float* tmp = bz.get(in_px * ce + out_px * ce, 5);
                const float *we = w, *wd = w + bk.cin * ce, *wp = wd + 9 * ce;
                const float *be = b, *bd = b + 1280, *bp = b + 2560;
                const double tf = time_median(
                    [&] {
                        inverted_residual_forward(g, bk.cin, bk.cout, x, we, be, wd, bd, wp, bp, y, expand, residual);
                    },
                    budget);
                InvertedResidualWeights iw;
                iw.pack(bk.cin, ce, bk.cout, we, be, wd, bd, wp, bp, expand);
                const double tpk = time_median(
                    [&] { inverted_residual_forward(g, bk.cin, bk.cout, x, iw, y, residual); }, budget);
                const double tu = time_median(
                    [&] {
                        const float* e = x;
                        if (expand) {
                            gemm(Trans::No, Trans::No, in_px, ce, bk.cin, x, bk.cin, we, ce, tmp, ce, bias_relu6(be));
                            e = tmp;
                        }
                        depthwise_forward(g, e, wd, tmp + in_px * ce, bias_relu6(bd));
                        Epilogue pe = bias_clamp(bp);
                        if (residual) pe.residual = x;
                        gemm(Trans::No, Trans::No, out_px, bk.cout, ce, tmp + in_px * ce, ce, wp, bk.cout, y, bk.cout, pe);
                    },
                    budget);
                const double flops = (expand ? 2.0 * in_px * bk.cin * ce : 0.0) + 18.0 * out_px * ce +
                                     2.0 * out_px * ce * bk.cout;
                tf_sum += tf * bk.count;
                tpk_sum += tpk * bk.count;
                tu_sum += tu * bk.count;
                fl_sum += flops * bk.count;
                fused_rows.push_back(
                    "    {\"block\": " +
                    json_str(std::to_string(bk.hw) + "x" + std::to_string(bk.hw) + " " + std::to_string(bk.cin) + "-t" +
                             std::to_string(bk.t) + "->" + std::to_string(bk.cout) + " s" + std::to_string(bk.stride)) +
                    ", \"batch\": " + std::to_string(batch) + ", \"threads\": " + std::to_string(threads) +
                    ", \"count\": " + std::to_string(bk.count) + ", \"fused_ms\": " + fmt(tf * 1e3) +
                    ", \"fused_prepacked_ms\": " + fmt(tpk * 1e3) +
                    ", \"unfused_ms\": " + fmt(tu * 1e3) + ", \"speedup\": " + fmt(tu / tf, 3) +
                    ", \"fused_gflops\": " + fmt(flops / tf / 1e9) + ", \"others_load\": " + fmt(g_last_load, 2) + "}");
            }
            {
                // The stem (224x224x3 -> 32, stride 2, reading x * 2 - 1) and block 0 in one
                // kernel (the stem's output made in block 0's bands) against the two kernels.
                const auto gs = ConvGeometry::same(batch, 224, 224, 3, 3, 3, 2, 2);
                const auto g0 = ConvGeometry::same(batch, 112, 112, 32, 3, 3, 1, 1);
                float* x = bx.get(gs.input_size(), 1);
                float* y = by.get(g0.output_pixels() * 16, 4);
                float* w = bw.get(27 * 32 + 9 * 32 + 32 * 16, 2);
                float* b = bb.get(3 * 1280 + 2 * 960, 3);
                float* tmp = bz.get(gs.output_pixels() * 32, 5);
                const float *ws = w, *wd = w + 27 * 32, *wp = wd + 9 * 32;
                InvertedResidualWeights iw;
                iw.pack(32, 32, 16, nullptr, nullptr, wd, b + 1280, wp, b + 2560, false);
                const Epilogue es = bias_relu6(b);
                const InputMap m{2.0f, -1.0f};
                const double tf = time_median(
                    [&] { stem_inverted_residual_forward(gs, 32, x, ws, es, m, g0, 16, iw, y); }, budget);
                const double tu = time_median(
                    [&] {
                        conv2d_forward(gs, 32, x, ws, tmp, es, m);
                        inverted_residual_forward(g0, 32, 16, tmp, iw, y, false);
                    },
                    budget);
                const double flops = 2.0 * double(gs.output_pixels()) * 27 * 32 + 18.0 * g0.output_pixels() * 32 +
                                     2.0 * g0.output_pixels() * 32 * 16;
                fused_rows.push_back("    {\"block\": \"stem 224x224x3->32 s2 + 112x112 32-t1->16 s1\", \"batch\": " +
                                     std::to_string(batch) + ", \"threads\": " + std::to_string(threads) +
                                     ", \"count\": 1, \"fused_prepacked_ms\": " + fmt(tf * 1e3) +
                                     ", \"unfused_ms\": " + fmt(tu * 1e3) + ", \"speedup\": " + fmt(tu / tf, 3) +
                                     ", \"fused_gflops\": " + fmt(flops / tf / 1e9) +
                                     ", \"others_load\": " + fmt(g_last_load, 2) + "}");
            }
            fused_rows.push_back("    {\"all_blocks\": true, \"batch\": " + std::to_string(batch) + ", \"threads\": " +
                                 std::to_string(threads) + ", \"fused_ms\": " + fmt(tf_sum * 1e3) +
                                 ", \"fused_prepacked_ms\": " + fmt(tpk_sum * 1e3) +
                                 ", \"unfused_ms\": " + fmt(tu_sum * 1e3) + ", \"speedup\": " + fmt(tu_sum / tf_sum, 3) +
                                 ", \"fused_gflops\": " + fmt(fl_sum / tf_sum / 1e9) + "}");
        }
    }

    out += "  \"layers\": [\n";
    for (std::size_t i = 0; i < rows.size(); ++i) out += rows[i] + (i + 1 < rows.size() ? ",\n" : "\n");
    out += "  ],\n  \"summary\": {\n";
    std::size_t k = 0;
    for (const auto& [key, t] : totals) {
        const int threads = key.back() - '0';
        const double gf = t.flops / t.seconds / 1e9;
        out += "    " + json_str(key) + ": {\"network_ms\": " + fmt(t.seconds * 1e3) + ", \"gflops\": " + fmt(gf) +
               ", \"share_of_peak\": " + fmt(gf / (peak1 * threads), 3) + "}" + (++k < totals.size() ? ",\n" : "\n");
    }
    out += "  },\n  \"depthwise_interior\": [\n";
    for (std::size_t i = 0; i < interior_rows.size(); ++i)
        out += interior_rows[i] + (i + 1 < interior_rows.size() ? ",\n" : "\n");
    out += "  ],\n  \"gemm_tiles\": [\n";
    for (std::size_t i = 0; i < tile_rows.size(); ++i)
        out += tile_rows[i] + (i + 1 < tile_rows.size() ? ",\n" : "\n");
    out += "  ],\n  \"fused_inverted_residual\": [\n";
    for (std::size_t i = 0; i < fused_rows.size(); ++i)
        out += fused_rows[i] + (i + 1 < fused_rows.size() ? ",\n" : "\n");
    out += "  ],\n  \"seconds_waited_for_quiet\": " + fmt(g_waited, 3) + "\n}\n";
    std::fputs(out.c_str(), stdout);
    return 0;
}
