/// @file train/feature_cache.hpp
/// `FeatureCache`: the outputs of a frozen first layer (a pretrained backbone), stored
/// per example, so the layers after it can train and evaluate without running it again.
///
/// An entry is keyed by the example's source (its file) and the signature of the
/// pipeline that computed its input (`Dataset::signature()`: the transforms, not the
/// order), so the same image seen through different preprocessing is stored twice,
/// and splits of one dataset share entries. The cache also remembers a fingerprint of
/// the first layer's weights and empties itself when they change. Models can share
/// one (`Model::share_feature_cache`), e.g. two heads trained on one frozen backbone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "typenet/core/parameter.hpp"

namespace typenet {

/// Stored features of a frozen first layer (see the file comment).
class FeatureCache {
public:
    /// Row of `key`, or -1.
    long find(const std::string& key) const {
        auto it = rows_.find(key);
        return it == rows_.end() ? -1 : static_cast<long>(it->second);
    }
    /// Store `width` values for `key` (ignored if present).
    void add(const std::string& key, const float* values, std::size_t width, std::int32_t label) {
        if (width_ == 0) width_ = width;
        if (rows_.count(key)) return;
        rows_.emplace(key, labels_.size());
        features_.insert(features_.end(), values, values + width);
        labels_.push_back(label);
    }
    const float* row(std::size_t r) const noexcept { return features_.data() + r * width_; }
    std::int32_t label(std::size_t r) const noexcept { return labels_[r]; }
    std::size_t width() const noexcept { return width_; }
    std::size_t size() const noexcept { return labels_.size(); }
    void clear() {
        rows_.clear();
        features_.clear();
        labels_.clear();
        width_ = 0;
    }

    /// Empty the cache unless `fingerprint` is the one its entries were made with.
    void check_fingerprint(std::uint64_t fingerprint) {
        if (fingerprint != fingerprint_) {
            clear();
            fingerprint_ = fingerprint;
        }
    }

    /// A checksum of a layer's parameters and buffers (FNV-1a over the float bits).
    template <class L>
    static std::uint64_t fingerprint_of(L& layer) {
        std::uint64_t h = 1469598103934665603ull;
        for (const BufferRef& t : state_tensors(layer)) {
            for (std::size_t i = 0; i < t.size; ++i) {
                std::uint32_t bits;
                std::memcpy(&bits, t.value + i, 4);
                h = (h ^ bits) * 1099511628211ull;
            }
        }
        return h;
    }

private:
    std::unordered_map<std::string, std::size_t> rows_;
    std::vector<float> features_;
    std::vector<std::int32_t> labels_;
    std::size_t width_ = 0;
    std::uint64_t fingerprint_ = 0;
};

}  // namespace typenet
