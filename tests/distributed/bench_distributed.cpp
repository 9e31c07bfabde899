// bench_distributed: the numbers of docs/distributed.md's scaling model, measured on
// this machine: a fine-tuning step (MobileNetV2 224x224, blocks FROM..16 and Conv_1
// trainable, batch norm frozen, Dense(3) head, Adam; random images, so no decoding),
// its compute time and the gradient allreduce, alone and overlapped with compute.
//
//     mpirun -np 1 --bind-to none -x OMP_NUM_THREADS=2 bench_distributed [--batch 32]   # 1 process x 2 threads
//     mpirun -np 2 --bind-to none -x OMP_NUM_THREADS=1 bench_distributed [--batch 32]   # 2 processes x 1 thread
//
// Options: --batch B (global batch, default 32), --steps N (timed steps, 8), --warmup W
// (2), --from BLOCK (12), --bucket-mb M (4). Rank 0 prints one line "key value" per
// figure (medians over the steps; seconds and bytes). The CPU seconds per step (summed
// over threads) are what a step costs whatever else runs on the machine; the wall
// times are only meaningful on a machine that runs nothing else.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <string>
#include <vector>

#include "typenet/distributed/data_parallel.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;
using clock_type = std::chrono::steady_clock;

namespace {

double since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

/// CPU time of this process (all its threads), in seconds: what a step costs whatever
/// else runs on the machine (the wall time of a step on a shared machine is not).
double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Median time of an allreduce of `floats` floats (reps repetitions, each started together).
double allreduce_seconds(const distributed::Communicator& comm, std::size_t floats, int reps) {
    std::vector<float> buf(floats, 1.0f);
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
        comm.barrier();
        const auto t0 = clock_type::now();
        comm.allreduce(buf.data(), buf.size());
        t.push_back(since(t0));
    }
    // The slowest process's time is the step's.
    double m = median(t);
    return comm.allreduce_value(m, distributed::ReduceOp::max);
}

}  // namespace

int main(int argc, char** argv) {
    distributed::Environment env(argc, argv);
    distributed::Communicator comm;
    std::size_t batch = 32, steps = 8, warmup = 2, from = 12, bucket_mb = 4;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        const std::size_t v = std::strtoull(argv[i + 1], nullptr, 10);
        if (a == "--batch") batch = v;
        else if (a == "--steps") steps = v;
        else if (a == "--warmup") warmup = v;
        else if (a == "--from") from = v;
        else if (a == "--bucket-mb") bucket_mb = v;
        else {
            if (comm.is_root()) std::fprintf(stderr, "bench_distributed: unknown option %s\n", a.c_str());
            return 2;
        }
    }
    const auto P = static_cast<std::size_t>(comm.size());
    if (batch % P) {
        if (comm.is_root()) std::fprintf(stderr, "bench_distributed: --batch must be a multiple of %zu\n", P);
        return 2;
    }
    const std::size_t local = batch / P;
    using Net = Sequential<models::MobileNetV2<>, Dense<3, Softmax>>;
    Net net;
    net.build({224, 224, 3}, 42);
    net.layer<0>().unfreeze_from(from);
    net.layer<0>().set_batchnorm_mode(BatchNormMode::Frozen);
    distributed::broadcast_weights(net, comm);
    auto model = compile(net, Adam(1e-4f), CategoricalCrossentropy<>(), CategoricalAccuracy());
    distributed::GradientAverager averager(comm, bucket_mb << 20);
    model.set_gradient_hook(std::ref(averager));

    Rng rng(1000 + static_cast<std::uint64_t>(comm.rank()));
    const Tensor<4> x = random_tensor<4>({local, 224, 224, 3}, rng, 0, 1);
    Tensor<2> y = zeros<2>({local, 3});
    for (std::size_t i = 0; i < local; ++i) y(i, i % 3) = 1;

    std::vector<double> step_t, reduce_t, cpu_t;
    for (std::size_t s = 0; s < warmup + steps; ++s) {
        comm.barrier();
        const double before = averager.stats().seconds, c0 = cpu_seconds();
        const auto t0 = clock_type::now();
        model.train_on_batch(x, y);
        const double st = since(t0);
        if (s >= warmup) {
            step_t.push_back(st);
            reduce_t.push_back(averager.stats().seconds - before);
            cpu_t.push_back(cpu_seconds() - c0);
        }
    }
    std::size_t trainable = 0;
    for (const ParamRef& p : net.parameters())
        if (p.trainable) trainable += p.size;
    const std::size_t grad_floats = trainable;
    const double step = comm.allreduce_value(median(step_t), distributed::ReduceOp::max);
    const double in_step = comm.allreduce_value(median(reduce_t), distributed::ReduceOp::max);
    const double cpu_max = comm.allreduce_value(median(cpu_t), distributed::ReduceOp::max);
    const double cpu_sum = comm.allreduce_value(median(cpu_t));

    // Pure communication: the gradient's size, and small messages for the latency.
    const double ar_grad = allreduce_seconds(comm, grad_floats, 20);
    const double ar_small = allreduce_seconds(comm, 1, 200);
    const double ar_1mb = allreduce_seconds(comm, (1u << 20) / 4, 20);
    const double ar_16mb = allreduce_seconds(comm, (16u << 20) / 4, 10);

    // Overlap: an MPI_Iallreduce of the gradient's size started before a forward +
    // backward pass and waited for after it, against the two one after the other.
    std::vector<float> buf(grad_floats, 1.0f);
    std::vector<double> compute_t, overlapped_t;
    for (int rep = 0; rep < 3; ++rep) {
        comm.barrier();
        auto t0 = clock_type::now();
        const auto& out = net.forward(x, true);
        Tensor<2> g = out;
        g.fill(1.0f / static_cast<float>(local));
        net.backward(g);
        compute_t.push_back(since(t0));
        comm.barrier();
        t0 = clock_type::now();
        MPI_Request req;
        MPI_Iallreduce(MPI_IN_PLACE, buf.data(), static_cast<int>(buf.size()), MPI_FLOAT, MPI_SUM, comm.native(), &req);
        const auto& out2 = net.forward(x, true);
        Tensor<2> g2 = out2;
        g2.fill(1.0f / static_cast<float>(local));
        net.backward(g2);
        MPI_Wait(&req, MPI_STATUS_IGNORE);
        overlapped_t.push_back(since(t0));
    }
    const double compute = comm.allreduce_value(median(compute_t), distributed::ReduceOp::max);
    const double overlapped = comm.allreduce_value(median(overlapped_t), distributed::ReduceOp::max);

    if (comm.is_root()) {
        std::printf("processes %zu\nthreads_per_process %d\nglobal_batch %zu\nlocal_batch %zu\n", P, max_threads(), batch,
                    local);
        std::printf("trainable_parameters %zu\ngradient_bytes %zu\nbuckets_per_step %zu\n", trainable, grad_floats * 4,
                    averager.stats().buckets);
        std::printf("step_seconds %.4f\nallreduce_in_step_seconds %.5f\ncompute_seconds %.4f\n", step, in_step, step - in_step);
        std::printf("images_per_second %.2f\n", static_cast<double>(batch) / step);
        std::printf("cpu_seconds_per_step_all_processes %.4f\ncpu_seconds_per_step_busiest_process %.4f\n", cpu_sum,
                    cpu_max);
        std::printf("allreduce_gradient_seconds %.6f\nallreduce_4_bytes_seconds %.7f\nallreduce_1MB_seconds %.6f\n"
                    "allreduce_16MB_seconds %.6f\n",
                    ar_grad, ar_small, ar_1mb, ar_16mb);
        std::printf("forward_backward_seconds %.4f\nforward_backward_with_iallreduce_seconds %.4f\n", compute, overlapped);
    }
    return 0;
}
