/// @file data/dataset.hpp
/// `Dataset`: a lazy, tf.data-like sequence of `Example`s, and `BatchedDataset`, its
/// batches.
///
/// A `Dataset` is a cheap, copyable handle on an immutable pipeline: files to decode
/// (or examples in memory, or a generator), then any chain of `concatenate`,
/// `shuffle`, `take`, `skip`, `map`, `cache`. Nothing is decoded until an element is
/// asked for, and `size()` is always known without decoding.
///
/// Every element is addressed by its position: element `i` of epoch `e` is computed
/// on its own, from its own inputs, with its own random stream
/// (`Rng::derive(Rng::derive(seed, e)(), i)` for each `map`). So a batch can be
/// decoded and transformed on several threads, or ahead of time on a background
/// thread (`prefetch`), and still give exactly the batches of a sequential run.
///
/// Epochs: each new iteration (`begin()`) over a `Dataset` or a `BatchedDataset` is the
/// next epoch of that handle (0, 1, 2, ...; copies share the count). A
/// `shuffle(..., reshuffle_each_iteration = true)` draws a new order each epoch;
/// with `false` the order is the same every epoch, which makes splits such as
///
/// ```
/// auto all = train.concatenate(test).shuffle(3000, seed, false);
/// auto val = all.take(600), tst = all.skip(600).take(400), trn = all.skip(1000);
/// ```
///
/// disjoint and reproducible (TensorFlow's default reshuffles each pass, so its three
/// splits overlap from epoch to epoch).
///
/// Data-parallel training (typenet/distributed/): `shard(global_batch, ranks, rank)`
/// gives each process its slice of every global batch, in the epoch's global order,
/// so that P processes together see exactly the batches of one (`ShardNode`).
///
/// ```
/// auto batches = trn.map(Compose<Scale<255>, Resize<224, 224>, OneHot<3>>{})
///                   .cache().shuffle(1900).batch(64).prefetch(2);
/// for (int epoch = 0; epoch < 5; ++epoch)
///     for (const Batch& b : batches)  // b.images (64, 224, 224, 3), b.targets (64, 3)
///         ...;                        // the next batches are prepared meanwhile
/// ```
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "typenet/config.hpp"
#include "typenet/core/error.hpp"
#include "typenet/core/example.hpp"
#include "typenet/core/random.hpp"
#include "typenet/core/tensor.hpp"
#include "typenet/core/type_name.hpp"
#include "typenet/data/image.hpp"
#include "typenet/data/transform.hpp"

namespace typenet::data {

/// A batch of examples, as a model takes it.
struct Batch {
    Tensor<4> images;                  ///< NHWC
    Tensor<2> targets;                 ///< (N, K) one-hot targets if the examples have targets, else (N, 1) class indices as float
    std::vector<std::int32_t> labels;  ///< class indices (-1: unlabelled)
    std::vector<std::string> sources;  ///< where each example came from (file paths)

    /// Number of examples.
    std::size_t size() const noexcept { return labels.size(); }
};

/// What a shard (`Dataset::shard`) does with the last, partial global batch of an
/// epoch, of m examples (0 < m < global batch, P ranks).
enum class ShardTail {
    /// Every rank gets floor(m / P) of them; the last m mod P (fewer than P examples,
    /// different ones each epoch when the order is reshuffled) are left out of the
    /// epoch. All ranks then have the same number of examples at every step, which
    /// data-parallel training needs (equal local batches average exactly).
    equal,
    /// The ranks share all m, the first m mod P ranks getting one more: nothing is
    /// left out, local batches may differ by one (evaluation, where only sums are
    /// combined).
    all,
};

namespace detail {

/// One stage of a pipeline. `get` must be thread-safe: several threads ask for
/// different (or the same) elements at once.
class Node {
public:
    virtual ~Node() = default;
    /// Number of elements (known without decoding).
    virtual std::size_t size() const = 0;
    /// Element `index` (< size()) of epoch `epoch`.
    virtual Example get(std::size_t index, std::uint64_t epoch) const = 0;
    /// Where element `index` comes from, without decoding or transforming it.
    virtual std::string source(std::size_t index, std::uint64_t epoch) const = 0;
    /// The label of element `index` as the source gives it, without decoding.
    virtual std::int32_t label(std::size_t index, std::uint64_t epoch) const = 0;
    /// Number of stages below this one (decorrelates the seeds of successive maps).
    virtual std::size_t depth() const { return 0; }
    /// Can element `index` differ from epoch to epoch (a random transform that no
    /// cache freezes)? Order does not count: shuffling is not randomness of an element.
    virtual bool random() const { return false; }
    /// What computes an element's value from its source (the chain of transforms, not
    /// the order): two pipelines with equal signatures give equal values for the same
    /// source. Used to key caches of values derived from examples.
    virtual std::string signature() const = 0;
};

using NodePtr = std::shared_ptr<const Node>;

/// The random stream of element `index` in epoch `epoch` of a map with seed `seed`.
inline Rng example_rng(std::uint64_t seed, std::uint64_t epoch, std::size_t index) noexcept {
    Rng per_epoch = Rng::derive(seed, epoch);
    return Rng::derive(per_epoch(), index);
}

/// Image files decoded on demand.
class FilesNode final : public Node {
public:
    FilesNode(std::vector<std::filesystem::path> files, std::vector<std::int32_t> labels)
        : files_(std::move(files)), labels_(std::move(labels)) {}
    std::size_t size() const override { return files_.size(); }
    Example get(std::size_t i, std::uint64_t) const override {
        Example e;
        e.image = to_tensor(read_image(files_[i]));
        e.label = labels_.empty() ? -1 : labels_[i];
        e.source = files_[i].string();
        return e;
    }
    std::string source(std::size_t i, std::uint64_t) const override { return files_[i].string(); }
    std::int32_t label(std::size_t i, std::uint64_t) const override { return labels_.empty() ? -1 : labels_[i]; }
    std::string signature() const override { return "files"; }

private:
    std::vector<std::filesystem::path> files_;
    std::vector<std::int32_t> labels_;
};

/// Examples held in memory.
class ExamplesNode final : public Node {
public:
    explicit ExamplesNode(std::vector<Example> ex) : ex_(std::move(ex)) {}
    std::size_t size() const override { return ex_.size(); }
    Example get(std::size_t i, std::uint64_t) const override { return ex_[i]; }
    std::string source(std::size_t i, std::uint64_t) const override { return ex_[i].source; }
    std::int32_t label(std::size_t i, std::uint64_t) const override { return ex_[i].label; }
    std::string signature() const override { return "examples@" + std::to_string(reinterpret_cast<std::uintptr_t>(this)); }

private:
    std::vector<Example> ex_;
};

/// Examples made by a function of their index.
class GeneratorNode final : public Node {
public:
    GeneratorNode(std::size_t n, std::function<Example(std::size_t)> f) : n_(n), f_(std::move(f)) {}
    std::size_t size() const override { return n_; }
    Example get(std::size_t i, std::uint64_t) const override { return f_(i); }
    std::string source(std::size_t i, std::uint64_t) const override { return f_(i).source; }
    std::int32_t label(std::size_t i, std::uint64_t) const override { return f_(i).label; }
    std::string signature() const override { return "generator@" + std::to_string(reinterpret_cast<std::uintptr_t>(this)); }

private:
    std::size_t n_;
    std::function<Example(std::size_t)> f_;
};

/// The elements of `a`, then those of `b`.
class ConcatNode final : public Node {
public:
    ConcatNode(NodePtr a, NodePtr b) : a_(std::move(a)), b_(std::move(b)) {}
    std::size_t size() const override { return a_->size() + b_->size(); }
    Example get(std::size_t i, std::uint64_t epoch) const override {
        const std::size_t na = a_->size();
        return i < na ? a_->get(i, epoch) : b_->get(i - na, epoch);
    }
    std::string source(std::size_t i, std::uint64_t epoch) const override {
        const std::size_t na = a_->size();
        return i < na ? a_->source(i, epoch) : b_->source(i - na, epoch);
    }
    std::int32_t label(std::size_t i, std::uint64_t epoch) const override {
        const std::size_t na = a_->size();
        return i < na ? a_->label(i, epoch) : b_->label(i - na, epoch);
    }
    std::size_t depth() const override { return std::max(a_->depth(), b_->depth()) + 1; }
    bool random() const override { return a_->random() || b_->random(); }
    std::string signature() const override {
        const std::string a = a_->signature(), b = b_->signature();
        return a == b ? a : "concat(" + a + ";" + b + ")";
    }

private:
    NodePtr a_, b_;
};

/// Elements `offset ... offset + count - 1` of the input (take and skip).
class RangeNode final : public Node {
public:
    RangeNode(NodePtr in, std::size_t offset, std::size_t count) : in_(std::move(in)), offset_(offset), count_(count) {}
    std::size_t size() const override { return count_; }
    Example get(std::size_t i, std::uint64_t epoch) const override { return in_->get(offset_ + i, epoch); }
    std::string source(std::size_t i, std::uint64_t epoch) const override { return in_->source(offset_ + i, epoch); }
    std::int32_t label(std::size_t i, std::uint64_t epoch) const override { return in_->label(offset_ + i, epoch); }
    std::size_t depth() const override { return in_->depth() + 1; }
    bool random() const override { return in_->random(); }
    std::string signature() const override { return in_->signature(); }

private:
    NodePtr in_;
    std::size_t offset_, count_;
};

/// The order in which a shuffle buffer of `buffer` elements, filled from a stream of
/// `n`, emits them: fill the buffer; then repeatedly emit a uniformly chosen element
/// and put the next input element in its place (tf.data's algorithm). With
/// buffer >= n it is a uniform random permutation; with buffer 1, the identity.
inline std::vector<std::size_t> buffer_shuffle_order(std::size_t n, std::size_t buffer, Rng& rng) {
    buffer = std::max<std::size_t>(buffer, 1);
    std::vector<std::size_t> out, buf;
    out.reserve(n);
    buf.reserve(std::min(buffer, n));
    std::size_t next = 0;
    while (next < n && buf.size() < buffer) buf.push_back(next++);
    while (!buf.empty()) {
        const auto j = static_cast<std::size_t>(rng.below(buf.size()));
        out.push_back(buf[j]);
        if (next < n) {
            buf[j] = next++;
        } else {
            buf[j] = buf.back();
            buf.pop_back();
        }
    }
    return out;
}

/// A buffer shuffle; the order of each epoch is computed once and remembered.
class ShuffleNode final : public Node {
public:
    ShuffleNode(NodePtr in, std::size_t buffer, std::uint64_t seed, bool reshuffle)
        : in_(std::move(in)), buffer_(buffer), seed_(seed), reshuffle_(reshuffle) {}
    std::size_t size() const override { return in_->size(); }
    Example get(std::size_t i, std::uint64_t epoch) const override {
        const auto o = order(epoch);
        return in_->get((*o)[i], epoch);
    }
    std::string source(std::size_t i, std::uint64_t epoch) const override { return in_->source((*order(epoch))[i], epoch); }
    std::int32_t label(std::size_t i, std::uint64_t epoch) const override { return in_->label((*order(epoch))[i], epoch); }
    std::size_t depth() const override { return in_->depth() + 1; }
    bool random() const override { return in_->random(); }
    std::string signature() const override { return in_->signature(); }

    /// The input positions in the order of epoch `epoch`.
    std::shared_ptr<const std::vector<std::size_t>> order(std::uint64_t epoch) const {
        const std::uint64_t key = reshuffle_ ? epoch : 0;
        std::lock_guard<std::mutex> lock(m_);
        for (const auto& [k, v] : recent_)
            if (k == key) return v;
        Rng rng = reshuffle_ ? Rng::derive(seed_, epoch) : Rng(seed_);
        auto v = std::make_shared<const std::vector<std::size_t>>(buffer_shuffle_order(in_->size(), buffer_, rng));
        recent_.emplace_back(key, v);
        if (recent_.size() > 4) recent_.pop_front();
        return v;
    }

private:
    NodePtr in_;
    std::size_t buffer_;
    std::uint64_t seed_;
    bool reshuffle_;
    mutable std::mutex m_;
    mutable std::deque<std::pair<std::uint64_t, std::shared_ptr<const std::vector<std::size_t>>>> recent_;
};

/// A transform applied to every element, with a per-element random stream.
template <class T>
class MapNode final : public Node {
public:
    MapNode(NodePtr in, T t, std::uint64_t seed) : in_(std::move(in)), t_(std::move(t)), seed_(seed) {}
    std::size_t size() const override { return in_->size(); }
    Example get(std::size_t i, std::uint64_t epoch) const override {
        Example e = in_->get(i, epoch);
        Rng rng = example_rng(seed_, epoch, i);
        t_(e, rng);
        return e;
    }
    std::string source(std::size_t i, std::uint64_t epoch) const override { return in_->source(i, epoch); }
    std::int32_t label(std::size_t i, std::uint64_t epoch) const override { return in_->label(i, epoch); }
    std::size_t depth() const override { return in_->depth() + 1; }
    bool random() const override { return is_random_transform_v<T> || in_->random(); }
    std::string signature() const override {
        std::string s = in_->signature() + " | " + type_name<T>();
        if constexpr (requires(const T& t) { std::string(t.config()); }) s += "{" + std::string(t_.config()) + "}";
        if (is_random_transform_v<T>) s += " seed " + std::to_string(seed_);
        return s;
    }

private:
    NodePtr in_;
    T t_;
    std::uint64_t seed_;
};

/// Remembers each element the first time it is computed (which freezes random
/// transforms before it: `random()` is false).
class CacheNode final : public Node {
public:
    explicit CacheNode(NodePtr in) : in_(std::move(in)), slots_(in_->size()) {}
    std::size_t size() const override { return slots_.size(); }
    Example get(std::size_t i, std::uint64_t epoch) const override {
        std::lock_guard<std::mutex> lock(locks_[i % locks_.size()]);
        if (!slots_[i]) slots_[i] = std::make_unique<const Example>(in_->get(i, epoch));
        return *slots_[i];
    }
    std::string source(std::size_t i, std::uint64_t epoch) const override { return in_->source(i, epoch); }
    std::int32_t label(std::size_t i, std::uint64_t epoch) const override { return in_->label(i, epoch); }
    std::size_t depth() const override { return in_->depth() + 1; }
    std::string signature() const override { return in_->signature(); }

private:
    NodePtr in_;
    mutable std::vector<std::unique_ptr<const Example>> slots_;
    mutable std::array<std::mutex, 64> locks_;
};

/// Rank `rank`'s part of every global batch of `global` = P x b examples, P = `ranks`:
/// global batch k holds elements k*global .. k*global + global - 1 of the input (in
/// the input's order of the epoch), and this rank gets the b elements from
/// k*global + rank*b. The partial last global batch is split as `tail` says. So
/// batch k of `shard(...).batch(b)` is rank `rank`'s slice of batch k of
/// `batch(global)`, epoch by epoch (shuffles below draw the global order).
class ShardNode final : public Node {
public:
    ShardNode(NodePtr in, std::size_t global, std::size_t ranks, std::size_t rank, ShardTail tail)
        : in_(std::move(in)), global_(global), ranks_(ranks), rank_(rank), local_(global / ranks), tail_(tail) {
        const std::size_t n = in_->size();
        full_ = n / global_;
        const std::size_t m = n % global_, q = m / ranks_, extra = m % ranks_;
        if (tail_ == ShardTail::equal) {
            tail_count_ = q;
            tail_start_ = full_ * global_ + rank_ * q;
        } else {
            tail_count_ = q + (rank_ < extra ? 1 : 0);
            tail_start_ = full_ * global_ + rank_ * q + std::min(rank_, extra);
        }
    }
    std::size_t size() const override { return full_ * local_ + tail_count_; }
    Example get(std::size_t i, std::uint64_t epoch) const override { return in_->get(global_index(i), epoch); }
    std::string source(std::size_t i, std::uint64_t epoch) const override { return in_->source(global_index(i), epoch); }
    std::int32_t label(std::size_t i, std::uint64_t epoch) const override { return in_->label(global_index(i), epoch); }
    std::size_t depth() const override { return in_->depth() + 1; }
    bool random() const override { return in_->random(); }
    std::string signature() const override { return in_->signature(); }

    /// Position in the input of this shard's element `i`.
    std::size_t global_index(std::size_t i) const noexcept {
        const std::size_t body = full_ * local_;
        if (i >= body) return tail_start_ + (i - body);
        return (i / local_) * global_ + rank_ * local_ + i % local_;
    }

private:
    NodePtr in_;
    std::size_t global_, ranks_, rank_, local_;
    ShardTail tail_;
    std::size_t full_ = 0, tail_count_ = 0, tail_start_ = 0;
};

/// Copy examples into a batch, reusing its buffers; all images must have one shape.
inline void assemble_batch(const std::vector<Example>& ex, Batch& b, int threads) {
    const std::size_t n = ex.size();
    const Shape<3> s0 = shape_of(ex[0].image);
    const std::size_t k = ex[0].target.size();
    for (std::size_t i = 1; i < n; ++i) {
        if (shape_of(ex[i].image) != s0)
            throw shape_error("batch: the images of a batch must all have one shape, but " + ex[0].source + " is " +
                              shape_to_string(s0) + " and " + ex[i].source + " is " +
                              shape_to_string(shape_of(ex[i].image)) + " (resize them first, e.g. map(Resize<224, 224>{}))");
        if (ex[i].target.size() != k)
            throw shape_error("batch: the targets of a batch must all have one length, but " + ex[0].source + " has " +
                              std::to_string(k) + " and " + ex[i].source + " has " + std::to_string(ex[i].target.size()));
    }
    const std::size_t per = s0[0] * s0[1] * s0[2];
    ensure_shape(b.images, Shape<4>{n, s0[0], s0[1], s0[2]});
    ensure_shape(b.targets, Shape<2>{n, k ? k : 1});
    b.labels.resize(n);
    b.sources.resize(n);
    float* images = b.images.data();
    float* targets = b.targets.data();
    const auto sn = static_cast<std::ptrdiff_t>(n);
    (void)threads;
    TYPENET_OMP(parallel for num_threads(threads) schedule(static))
    for (std::ptrdiff_t si = 0; si < sn; ++si) {
        const auto i = static_cast<std::size_t>(si);
        std::memcpy(images + i * per, ex[i].image.data(), per * sizeof(float));
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (k)
            std::memcpy(targets + i * k, ex[i].target.data(), k * sizeof(float));
        else
            targets[i] = static_cast<float>(ex[i].label);
        b.labels[i] = ex[i].label;
        b.sources[i] = ex[i].source;
    }
}

/// How to cut a dataset into batches.
struct BatchPlan {
    NodePtr node;
    std::size_t batch_size = 1;
    bool drop_remainder = false;
    int threads = 0;           ///< threads computing the examples of a batch (0: max_threads())
    std::size_t prefetch = 0;  ///< batches computed ahead on a background thread (0: none)

    std::size_t count() const noexcept {
        const std::size_t n = node->size();
        return drop_remainder ? n / batch_size : (n + batch_size - 1) / batch_size;
    }
};

/// Compute batch `index` of `epoch` into `b` (examples on up to `threads` threads, in
/// a fixed order of results). Returns false, leaving `b` unspecified, when `stop` is set.
/// Rethrows the error of the first failing example (lowest position).
inline bool fill_batch(const BatchPlan& plan, std::uint64_t epoch, std::size_t index, std::vector<Example>& scratch,
                       Batch& b, const std::atomic<bool>* stop = nullptr) {
    const std::size_t n = plan.node->size();
    const std::size_t start = index * plan.batch_size;
    const std::size_t count = std::min(plan.batch_size, n - start);
    scratch.resize(count);
    std::vector<std::exception_ptr> errors(count);
    int threads = plan.threads > 0 ? plan.threads : max_threads();
    threads = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(std::max(threads, 1)), count));
    const Node* node = plan.node.get();
    const auto sc = static_cast<std::ptrdiff_t>(count);
    TYPENET_OMP(parallel for num_threads(threads) schedule(dynamic, 1))
    for (std::ptrdiff_t si = 0; si < sc; ++si) {
        const auto i = static_cast<std::size_t>(si);
        if (stop && stop->load(std::memory_order_relaxed)) continue;
        try {
            scratch[i] = node->get(start + i, epoch);
        } catch (...) {
            errors[i] = std::current_exception();
        }
    }
    if (stop && stop->load()) return false;
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
    assemble_batch(scratch, b, threads);
    return true;
}

/// The batches of one epoch, computed on demand or (with prefetch) ahead of time on a
/// background thread. Destroying it stops and joins the thread.
class BatchStream {
public:
    BatchStream(BatchPlan plan, std::uint64_t epoch) : plan_(std::move(plan)), epoch_(epoch), total_(plan_.count()) {
        if (plan_.prefetch > 0 && total_ > 0) {
            slots_.resize(plan_.prefetch + 1);
            for (std::size_t s = 0; s < slots_.size(); ++s) free_.push_back(s);
            worker_ = std::thread([this] { produce(); });
        }
    }
    ~BatchStream() {
        if (worker_.joinable()) {
            {
                std::lock_guard<std::mutex> lock(m_);
                stop_ = true;
            }
            stop_flag_.store(true);
            cv_.notify_all();
            worker_.join();
        }
    }
    BatchStream(const BatchStream&) = delete;
    BatchStream& operator=(const BatchStream&) = delete;

    /// The next batch (valid until the next call), or nullptr after the last one.
    /// Rethrows, in this thread, an error raised while computing it.
    const Batch* next() {
        if (consumed_ >= total_) return nullptr;
        if (!worker_.joinable()) {
            fill_batch(plan_, epoch_, consumed_, scratch_, batch_);
            ++consumed_;
            return &batch_;
        }
        std::unique_lock<std::mutex> lock(m_);
        if (held_ != npos) {
            free_.push_back(held_);
            held_ = npos;
            cv_.notify_all();
        }
        cv_.wait(lock, [&] { return !ready_.empty(); });
        const std::size_t s = ready_.front();
        ready_.pop_front();
        held_ = s;
        ++consumed_;
        if (slots_[s].error) {
            consumed_ = total_;  // the epoch ends with the error
            std::rethrow_exception(slots_[s].error);
        }
        return &slots_[s].batch;
    }

private:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
    struct Slot {
        Batch batch;
        std::exception_ptr error;
    };

    void produce() {
        std::vector<Example> scratch;
        for (std::size_t b = 0; b < total_; ++b) {
            std::size_t s;
            {
                std::unique_lock<std::mutex> lock(m_);
                cv_.wait(lock, [&] { return stop_ || !free_.empty(); });
                if (stop_) return;
                s = free_.front();
                free_.pop_front();
            }
            bool failed = false;
            try {
                if (!fill_batch(plan_, epoch_, b, scratch, slots_[s].batch, &stop_flag_)) return;
                slots_[s].error = nullptr;
            } catch (...) {
                slots_[s].error = std::current_exception();
                failed = true;
            }
            {
                std::lock_guard<std::mutex> lock(m_);
                ready_.push_back(s);
            }
            cv_.notify_all();
            if (failed) return;
        }
    }

    BatchPlan plan_;
    std::uint64_t epoch_;
    std::size_t total_;
    std::size_t consumed_ = 0;
    // Without prefetch: one batch, refilled in place.
    Batch batch_;
    std::vector<Example> scratch_;
    // With prefetch: prefetch + 1 slots cycling between the worker and the consumer.
    std::vector<Slot> slots_;
    std::deque<std::size_t> free_, ready_;
    std::size_t held_ = npos;
    std::mutex m_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::atomic<bool> stop_flag_{false};
    std::thread worker_;
};

}  // namespace detail

class BatchedDataset;

/// A lazy sequence of examples (see the file description). Copies share the pipeline
/// and the epoch count.
class Dataset {
public:
    /// An empty dataset.
    Dataset() : Dataset(std::make_shared<detail::ExamplesNode>(std::vector<Example>{})) {}
    /// A dataset over a pipeline stage (for new kinds of sources).
    explicit Dataset(detail::NodePtr node) : node_(std::move(node)) {}

    /// Image files, decoded when needed (`read_image`, values 0..255), with their labels
    /// (empty: every label is -1). `source` of each example is the file path.
    /// @throws config_error when there are labels but not one per file.
    static Dataset from_files(std::vector<std::filesystem::path> files, std::vector<std::int32_t> labels = {}) {
        if (!labels.empty() && labels.size() != files.size())
            throw config_error("Dataset::from_files: " + std::to_string(files.size()) + " files but " +
                               std::to_string(labels.size()) + " labels");
        return Dataset(std::make_shared<detail::FilesNode>(std::move(files), std::move(labels)));
    }
    /// Examples held in memory.
    static Dataset from_examples(std::vector<Example> examples) {
        return Dataset(std::make_shared<detail::ExamplesNode>(std::move(examples)));
    }
    /// `size` examples made by `make(index)`, which must be thread-safe and give the same
    /// example for the same index (`sources()` and `labels()` call it too).
    static Dataset from_generator(std::size_t size, std::function<Example(std::size_t)> make) {
        return Dataset(std::make_shared<detail::GeneratorNode>(size, std::move(make)));
    }

    /// Number of examples (no decoding).
    std::size_t size() const { return node_->size(); }

    /// Example `index` as epoch `epoch` computes it (decoded and transformed now).
    /// @throws config_error when index >= size().
    Example get(std::size_t index, std::uint64_t epoch = 0) const {
        if (index >= size())
            throw config_error("Dataset::get: index " + std::to_string(index) + " is past the end (size " +
                               std::to_string(size()) + ")");
        return node_->get(index, epoch);
    }

    /// Where each example of epoch `epoch` comes from (file paths), in order, without
    /// decoding anything (transforms are not run: a source a transform would change is
    /// reported as its input gives it).
    std::vector<std::string> sources(std::uint64_t epoch = 0) const {
        std::vector<std::string> out(size());
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = node_->source(i, epoch);
        return out;
    }
    /// The label of each example of epoch `epoch`, in order, without decoding (as the
    /// source gives it: transforms are not run).
    std::vector<std::int32_t> labels(std::uint64_t epoch = 0) const {
        std::vector<std::int32_t> out(size());
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = node_->label(i, epoch);
        return out;
    }

    /// Does an example's value change from epoch to epoch (a random transform not
    /// frozen by a later `cache()`)? Transforms are random when they declare
    /// `is_random = true`; lambdas and types without the declaration count as
    /// deterministic (the Transform concept's contract).
    bool random_transforms() const { return node_ && node_->random(); }
    /// What computes the values (see Node::signature).
    std::string signature() const { return node_ ? node_->signature() : std::string("empty"); }

    /// This dataset's examples followed by `other`'s.
    Dataset concatenate(const Dataset& other) const {
        return Dataset(std::make_shared<detail::ConcatNode>(node_, other.node_));
    }

    /// Shuffle through a buffer of `buffer_size` examples, as tf.data does (a buffer at
    /// least as large as the dataset gives a uniform permutation). With
    /// `reshuffle_each_iteration` each epoch has its own order; without, every epoch
    /// has the order of `seed`. Only positions are shuffled: nothing is decoded.
    Dataset shuffle(std::size_t buffer_size, std::uint64_t seed = TYPENET_DEFAULT_SEED,
                    bool reshuffle_each_iteration = true) const {
        if (buffer_size == 0) throw config_error("Dataset::shuffle: the buffer size must be at least 1");
        return Dataset(std::make_shared<detail::ShuffleNode>(node_, buffer_size, seed, reshuffle_each_iteration));
    }

    /// The first `n` examples (all of them when n >= size()).
    Dataset take(std::size_t n) const {
        return Dataset(std::make_shared<detail::RangeNode>(node_, 0, std::min(n, size())));
    }
    /// All but the first `n` examples (none when n >= size()).
    Dataset skip(std::size_t n) const {
        const std::size_t k = std::min(n, size());
        return Dataset(std::make_shared<detail::RangeNode>(node_, k, size() - k));
    }

    /// Apply `transform` (a `Transform`: a type such as `Compose<...>` or a lambda
    /// `(Example&, Rng&)`) to every example, lazily. Example `i` of epoch `e` gets the
    /// random stream `Rng::derive(Rng::derive(s, e)(), i)`, with `s` derived from `seed`
    /// and the position of this map in the pipeline: results depend on the seed only,
    /// never on threads. The transform is called from several threads at once.
    template <class T>
    Dataset map(T transform, std::uint64_t seed = TYPENET_DEFAULT_SEED) const {
        static_assert(detail::transform_check<T>::value || true);  // names T if it is no Transform
        if constexpr (Transform<T>) {
            std::uint64_t mix = seed + 0x9E3779B97F4A7C15ull * (node_->depth() + 1);
            return Dataset(std::make_shared<detail::MapNode<T>>(node_, std::move(transform), splitmix64(mix)));
        } else {
            return *this;
        }
    }

    /// Keep every example in memory once computed (after the transforms before the
    /// cache), shared by all copies of the returned dataset. Later epochs reuse the
    /// stored value: random transforms before the cache are therefore frozen (as in
    /// tf.data). Memory: one float32 image per example (224x224x3: 588 KiB).
    Dataset cache() const { return Dataset(std::make_shared<detail::CacheNode>(node_)); }

    /// Rank `rank` of `ranks`'s share of each global batch of `global_batch` examples
    /// (data-parallel training: every process reads only its own part). With
    /// b = global_batch / ranks, batch k of `shard(global_batch, ranks, rank).batch(b)`
    /// is examples rank*b .. rank*b + b - 1 of batch k of `batch(global_batch)`, in
    /// every epoch: shuffles and random transforms before the shard see the global
    /// positions, so each example gets the order and random stream a single process
    /// would give it. The last, partial global batch is split as `tail` says (see
    /// `ShardTail`; `equal` may leave out up to ranks - 1 examples per epoch).
    /// @throws config_error when ranks is 0, rank >= ranks, or global_batch is not a
    /// positive multiple of ranks.
    Dataset shard(std::size_t global_batch, std::size_t ranks, std::size_t rank,
                  ShardTail tail = ShardTail::equal) const {
        if (ranks == 0 || rank >= ranks)
            throw config_error("Dataset::shard: rank " + std::to_string(rank) + " of " + std::to_string(ranks) +
                               " ranks does not exist");
        if (global_batch == 0 || global_batch % ranks != 0)
            throw config_error("Dataset::shard: the global batch (" + std::to_string(global_batch) +
                               ") must be a positive multiple of the number of ranks (" + std::to_string(ranks) + ")");
        return Dataset(std::make_shared<detail::ShardNode>(node_, global_batch, ranks, rank, tail));
    }

    /// Group consecutive examples into batches of `batch_size` (the last one smaller
    /// unless `drop_remainder`). See `BatchedDataset`.
    BatchedDataset batch(std::size_t batch_size, bool drop_remainder = false) const;

    /// Input iterator over one epoch (examples computed one by one, in this thread).
    class iterator {
    public:
        using value_type = Example;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        iterator(detail::NodePtr node, std::uint64_t epoch) : node_(std::move(node)), epoch_(epoch) { load(); }
        const Example& operator*() const { return current_; }
        const Example* operator->() const { return &current_; }
        iterator& operator++() {
            ++index_;
            load();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) {
            return !it.node_ || it.index_ >= it.node_->size();
        }

    private:
        void load() {
            if (node_ && index_ < node_->size()) current_ = node_->get(index_, epoch_);
        }
        detail::NodePtr node_;
        std::uint64_t epoch_ = 0;
        std::size_t index_ = 0;
        Example current_;
    };

    /// Start the next epoch.
    iterator begin() const { return iterator(node_, epoch_->fetch_add(1)); }
    /// End of an epoch.
    std::default_sentinel_t end() const noexcept { return {}; }

    /// The epoch the next `begin()` starts.
    std::uint64_t next_epoch() const noexcept { return epoch_->load(); }
    /// Make the next `begin()` start epoch `e` (e.g. to resume training).
    void set_next_epoch(std::uint64_t e) const noexcept { epoch_->store(e); }

    /// The pipeline stage this handle stands for.
    const detail::NodePtr& node() const noexcept { return node_; }

private:
    detail::NodePtr node_;
    std::shared_ptr<std::atomic<std::uint64_t>> epoch_ = std::make_shared<std::atomic<std::uint64_t>>(0);
};

/// The batches of a dataset. Iterating gives `const Batch&` (valid until the next
/// step; its buffers are reused from batch to batch); each new iteration is the next
/// epoch. Examples of a batch are computed on `parallel(n)` threads (default:
/// `max_threads()`), and with `prefetch(k)` up to k batches ahead on a background
/// thread while the consumer works; results are identical in every configuration.
/// An error while computing a batch (e.g. an `image_error` naming the file) is
/// rethrown in the consuming thread when that batch is reached. Destroying an
/// iterator part-way stops its background thread.
class BatchedDataset {
public:
    /// Batches of `batch_size` examples of `ds`. @throws config_error when batch_size is 0.
    BatchedDataset(const Dataset& ds, std::size_t batch_size, bool drop_remainder) {
        if (batch_size == 0) throw config_error("Dataset::batch: the batch size must be at least 1");
        plan_.node = ds.node();
        plan_.batch_size = batch_size;
        plan_.drop_remainder = drop_remainder;
    }

    /// Number of batches.
    std::size_t size() const noexcept { return plan_.count(); }
    /// Examples per batch (the last may have fewer unless drop_remainder).
    std::size_t batch_size() const noexcept { return plan_.batch_size; }
    /// Number of examples of the underlying dataset.
    std::size_t num_examples() const { return plan_.node->size(); }

    /// Where each example of epoch `e` comes from, in batch order (no decoding).
    std::vector<std::string> sources(std::uint64_t e) const {
        std::vector<std::string> out(plan_.node->size());
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = plan_.node->source(i, e);
        return out;
    }
    /// The label of each example of epoch `e`, in batch order (no decoding).
    std::vector<std::int32_t> labels(std::uint64_t e) const {
        std::vector<std::int32_t> out(plan_.node->size());
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = plan_.node->label(i, e);
        return out;
    }
    /// See `Dataset::random_transforms`.
    bool random_transforms() const { return plan_.node->random(); }
    /// See `Dataset::signature`.
    std::string signature() const { return plan_.node->signature(); }

    /// The same batches, computed up to `batches` ahead on a background thread.
    BatchedDataset prefetch(std::size_t batches) const {
        BatchedDataset b = fresh();
        b.plan_.prefetch = batches;
        return b;
    }
    /// The same batches, each computed on `threads` threads (0: `max_threads()`).
    BatchedDataset parallel(int threads) const {
        BatchedDataset b = fresh();
        b.plan_.threads = std::max(threads, 0);
        return b;
    }

    /// Rank `rank` of `ranks`'s part of these batches (see `Dataset::shard`): its batch
    /// k is its slice of batch k here, batch_size() / ranks examples (same
    /// drop_remainder, threads and prefetch; its own epoch count, as `prefetch` gives:
    /// epoch e of the shard is its part of epoch e here). With `ShardTail::all`
    /// (evaluation) the batch size need not be a multiple of ranks: the shard then
    /// cuts global batches of ranks x ceil(batch_size() / ranks).
    /// @throws config_error when ranks is 0, rank >= ranks, or (ShardTail::equal) the
    /// batch size is not a multiple of ranks.
    BatchedDataset shard(std::size_t ranks, std::size_t rank, ShardTail tail = ShardTail::equal) const {
        if (ranks == 0 || rank >= ranks)
            throw config_error("BatchedDataset::shard: rank " + std::to_string(rank) + " of " + std::to_string(ranks) +
                               " ranks does not exist");
        std::size_t global = plan_.batch_size;
        if (global % ranks != 0) {
            if (tail == ShardTail::equal)
                throw config_error("BatchedDataset::shard: the batch size (" + std::to_string(global) +
                                   ", the global batch) must be a multiple of the number of ranks (" +
                                   std::to_string(ranks) + ")");
            global = (global + ranks - 1) / ranks * ranks;
        }
        BatchedDataset b = fresh();
        b.plan_.node = std::make_shared<detail::ShardNode>(plan_.node, global, ranks, rank, tail);
        b.plan_.batch_size = global / ranks;
        return b;
    }

    /// Input iterator over the batches of one epoch.
    class iterator {
    public:
        using value_type = Batch;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        explicit iterator(std::unique_ptr<detail::BatchStream> s) : s_(std::move(s)) { current_ = s_->next(); }
        const Batch& operator*() const { return *current_; }
        const Batch* operator->() const { return current_; }
        iterator& operator++() {
            current_ = s_->next();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.current_ == nullptr; }

    private:
        std::unique_ptr<detail::BatchStream> s_;
        const Batch* current_ = nullptr;
    };

    /// Start the next epoch.
    iterator begin() const { return iterator(std::make_unique<detail::BatchStream>(plan_, epoch_->fetch_add(1))); }
    /// End of an epoch.
    std::default_sentinel_t end() const noexcept { return {}; }
    /// Iterate epoch `e` without touching the epoch count.
    iterator begin_epoch(std::uint64_t e) const { return iterator(std::make_unique<detail::BatchStream>(plan_, e)); }

    /// The epoch the next `begin()` starts.
    std::uint64_t next_epoch() const noexcept { return epoch_->load(); }
    /// Make the next `begin()` start epoch `e` (e.g. to resume training).
    void set_next_epoch(std::uint64_t e) const noexcept { epoch_->store(e); }

private:
    BatchedDataset fresh() const {
        BatchedDataset b = *this;
        b.epoch_ = std::make_shared<std::atomic<std::uint64_t>>(0);
        return b;
    }
    detail::BatchPlan plan_;
    std::shared_ptr<std::atomic<std::uint64_t>> epoch_ = std::make_shared<std::atomic<std::uint64_t>>(0);
};

inline BatchedDataset Dataset::batch(std::size_t batch_size, bool drop_remainder) const {
    return BatchedDataset(*this, batch_size, drop_remainder);
}

}  // namespace typenet::data
