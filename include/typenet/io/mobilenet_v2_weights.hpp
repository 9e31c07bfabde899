/// @file io/mobilenet_v2_weights.hpp
/// ImageNet-pretrained weights for `models::MobileNetV2`: TF-slim `.npy` tensors,
/// TFLite models, and the recommended full float model.
///
/// The weights folder is laid out like `$TYPENET_DATA/weights` (see its README):
///
///     weights/mobilenet_v2_1.0_224/*.npy      TF-slim variables, '/' written as '_'
///     weights/tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite   int8, per-channel
///     weights/tflite/mobilenet_v2_1.0_224_quant.tflite     uint8 (QAT), per-tensor
///     weights/imagenet_labels.txt
///
/// typenet's parameter names are the checkpoint's (`expanded_conv_3/project/weights`
/// is `expanded_conv_3_project_weights.npy`), and its layouts too (convolutions HWIO,
/// depthwise `[kh, kw, C, 1]`), so loading is a name and shape match. Every tensor is
/// checked; all missing, unexpected and mis-shaped tensors are reported at once in one
/// `mismatch_error`.
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/core/parameter.hpp"
#include "typenet/core/paths.hpp"
#include "typenet/io/npy.hpp"
#include "typenet/io/tflite.hpp"
#include "typenet/models/mobilenet_v2.hpp"

namespace typenet::io {

namespace detail {


/// '/' -> '_': the checkpoint's file name of a typenet tensor name.
inline std::string slim_file_name(const std::string& name) {
    std::string s = name;
    std::replace(s.begin(), s.end(), '/', '_');
    return s + ".npy";
}

/// The classifier tensors, loaded separately.
inline bool is_classifier(const std::string& name) { return name.rfind("Logits/", 0) == 0; }

inline void write_all(const BufferRef& t, const std::vector<float>& v) { std::copy(v.begin(), v.end(), t.value); }

/// Classifier weights of a TFLite model as typenet's Dense kernel (1280 x 1001): the
/// last CONV_2D (or FULLY_CONNECTED) before the softmax, [1001, 1, 1, 1280] or [1001, 1280].
struct Classifier {
    std::vector<float> kernel;  ///< 1280 x 1001, row-major
    std::vector<float> bias;    ///< 1001
};

inline Classifier tflite_classifier(const TfliteModel& m) {
    const auto& g = m.subgraphs.at(0);
    for (auto it = g.operators.rbegin(); it != g.operators.rend(); ++it) {
        if (it->op != TfliteOp::conv_2d && it->op != TfliteOp::fully_connected) continue;
        const TfliteTensor& w = g.tensors.at(static_cast<std::size_t>(it->inputs.at(1)));
        std::size_t in = 1;
        for (std::size_t d = 1; d < w.shape.size(); ++d) in *= static_cast<std::size_t>(w.shape[d]);
        const std::size_t out = static_cast<std::size_t>(w.shape.at(0));
        if (out != 1001 || in != 1280)
            throw mismatch_error(m.path, "the classifier has " + std::to_string(out) + " x " + std::to_string(in) +
                                             " weights; MobileNetV2 needs 1001 x 1280");
        const std::vector<float> wq = dequantize(m, w);
        Classifier c;
        c.kernel.resize(in * out);
        for (std::size_t o = 0; o < out; ++o)
            for (std::size_t i = 0; i < in; ++i) c.kernel[i * out + o] = wq[o * in + i];
        if (it->inputs.size() > 2 && it->inputs[2] >= 0)
            c.bias = dequantize(m, g.tensors.at(static_cast<std::size_t>(it->inputs[2])));
        return c;
    }
    throw mismatch_error(m.path, "no classifier (CONV_2D or FULLY_CONNECTED) found");
}

}  // namespace detail

/// Load TF-slim `.npy` weights from `dir` (e.g. `weights/mobilenet_v2_1.0_224`) into a
/// MobileNetV2 (built for any input size). With IncludeTop, the classifier bias comes
/// from `Logits_Conv2d_1c_1x1_biases.npy` and the classifier kernel, which the folder
/// lacks, from `classifier` (a `.tflite` model, dequantized), required then.
/// Throws io_error when the folder is missing and mismatch_error listing every missing,
/// unexpected or mis-shaped tensor.
template <bool Top, class Act>
void load_mobilenet_v2_npy(models::MobileNetV2<Top, Act>& model, const std::filesystem::path& dir,
                           const std::filesystem::path& classifier = {}) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
        throw io_error(dir.string(), "weights folder not found (set TYPENET_DATA, or pass the folder holding the "
                                     "MobileNetV2 .npy files)");
    std::set<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec))
        if (e.path().extension() == ".npy") files.insert(e.path().filename().string());

    std::vector<std::string> missing, misshaped;
    std::set<std::string> used;
    std::map<std::string, NpyArray> arrays;
    const auto tensors = state_tensors(model);
    for (const BufferRef& t : tensors) {
        if (detail::is_classifier(t.name) && t.name != "Logits/bias") continue;
        const std::string file = t.name == "Logits/bias" ? "Logits_Conv2d_1c_1x1_biases.npy" : detail::slim_file_name(t.name);
        if (!files.count(file)) {
            missing.push_back(t.name + " (" + file + ", shape " + shape_to_string(t.shape) + ")");
            continue;
        }
        used.insert(file);
        NpyArray a = read_npy(dir / file);
        std::vector<std::size_t> expect = t.shape;
        if (a.shape != expect)
            misshaped.push_back(t.name + ": expected " + shape_to_string(expect) + ", file has " +
                                shape_to_string(a.shape));
        else
            arrays.emplace(t.name, std::move(a));
    }
    std::vector<std::string> unexpected;
    for (const auto& f : files)
        if (!used.count(f) && !(f == "Logits_Conv2d_1c_1x1_biases.npy" && !Top)) unexpected.push_back(f);
    if (!missing.empty() || !misshaped.empty() || !unexpected.empty()) {
        std::ostringstream os;
        os << "weights do not match MobileNetV2: " << missing.size() << " missing, " << unexpected.size()
           << " unexpected, " << misshaped.size() << " mis-shaped tensor(s)";
        for (const auto& m : missing) os << "\n  missing: " << m;
        for (const auto& u : unexpected) os << "\n  unexpected: " << u;
        for (const auto& s : misshaped) os << "\n  shape: " << s;
        throw mismatch_error(dir.string(), os.str());
    }
    for (const BufferRef& t : tensors) {
        auto it = arrays.find(t.name);
        if (it != arrays.end()) detail::write_all(t, it->second.data);
    }
    if constexpr (Top) {
        if (classifier.empty())
            throw config_error("load_mobilenet_v2_npy: the .npy folder has no classifier kernel; pass a .tflite "
                               "model to take it from (weights/tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite)");
        const detail::Classifier c = detail::tflite_classifier(read_tflite(classifier));
        for (const BufferRef& t : tensors)
            if (t.name == "Logits/kernel") detail::write_all(t, c.kernel);
    }
    weights_changed(model);
}

/// Build a complete MobileNetV2 from a TFLite model (int8 per-channel PTQ or uint8 QAT):
/// every convolution's weights dequantized, with batch norm already folded in (gamma 1,
/// beta = the bias, moving mean 0, moving variance 1 - epsilon, so the fold is exact).
/// The operators are matched in order and each is checked (kind, stride, padding,
/// fused activation, shape); any difference is a mismatch_error naming the operator.
template <class Act>
void load_mobilenet_v2_tflite(models::MobileNetV2<true, Act>& model, const std::filesystem::path& file) {
    const TfliteModel m = read_tflite(file);
    const auto& g = m.subgraphs.at(0);
    std::vector<const TfliteOperator*> convs;
    for (const auto& op : g.operators)
        if (op.op == TfliteOp::conv_2d || op.op == TfliteOp::depthwise_conv_2d) convs.push_back(&op);

    const auto tensors = state_tensors(model);
    std::map<std::string, BufferRef> by_name;
    std::vector<std::string> units;  // prefixes of the conv + batch-norm units, in order
    for (const BufferRef& t : tensors) {
        by_name[t.name] = t;
        for (const char* suffix : {"/weights", "/depthwise_weights"}) {
            const std::string s = suffix;
            if (t.name.size() > s.size() && t.name.compare(t.name.size() - s.size(), s.size(), s) == 0)
                units.push_back(t.name.substr(0, t.name.size() - s.size()));
        }
    }
    if (convs.size() != units.size() + 1)
        throw mismatch_error(file.string(), "has " + std::to_string(convs.size()) +
                                                " convolutions; MobileNetV2 with its classifier has " +
                                                std::to_string(units.size() + 1));
    const float eps = 1e-3f;
    for (std::size_t u = 0; u < units.size(); ++u) {
        const TfliteOperator& op = *convs[u];
        const std::string& prefix = units[u];
        const bool depthwise = by_name.count(prefix + "/depthwise_weights") > 0;
        const BufferRef& w = by_name.at(prefix + (depthwise ? "/depthwise_weights" : "/weights"));
        auto fail = [&](const std::string& why) {
            throw mismatch_error(file.string(), "operator " + std::to_string(u) + " (for " + prefix + "): " + why);
        };
        if ((op.op == TfliteOp::depthwise_conv_2d) != depthwise)
            fail(std::string("is a ") + tflite_op_name(op.op) + ", expected " +
                 (depthwise ? "DEPTHWISE_CONV_2D" : "CONV_2D"));
        const TfliteTensor& wt = g.tensors.at(static_cast<std::size_t>(op.inputs.at(1)));
        const std::size_t kh = w.shape[0], kw = w.shape[1], cin = w.shape[2], cout = w.shape[3];
        std::vector<std::int32_t> expect = depthwise ? std::vector<std::int32_t>{1, int(kh), int(kw), int(cin)}
                                                     : std::vector<std::int32_t>{int(cout), int(kh), int(kw), int(cin)};
        if (wt.shape != expect) {
            std::vector<std::size_t> got(wt.shape.begin(), wt.shape.end()), want(expect.begin(), expect.end());
            fail("weights " + shape_to_string(got) + ", expected " + shape_to_string(want));
        }
        const std::vector<float> wq = dequantize(m, wt);
        if (depthwise) {
            std::copy(wq.begin(), wq.end(), w.value);  // [1, kh, kw, C] == [kh, kw, C, 1] in memory
        } else {
            // OHWI -> HWIO
            for (std::size_t o = 0; o < cout; ++o)
                for (std::size_t y = 0; y < kh; ++y)
                    for (std::size_t x = 0; x < kw; ++x)
                        for (std::size_t i = 0; i < cin; ++i)
                            w.value[((y * kw + x) * cin + i) * cout + o] = wq[((o * kh + y) * kw + x) * cin + i];
        }
        const std::size_t c = depthwise ? cin : cout;
        std::vector<float> bias(c, 0.0f);
        if (op.inputs.size() > 2 && op.inputs[2] >= 0) {
            bias = dequantize(m, g.tensors.at(static_cast<std::size_t>(op.inputs[2])));
            if (bias.size() != c) fail("bias has " + std::to_string(bias.size()) + " values, expected " + std::to_string(c));
        }
        std::fill(by_name.at(prefix + "/BatchNorm/gamma").value, by_name.at(prefix + "/BatchNorm/gamma").value + c, 1.0f);
        std::copy(bias.begin(), bias.end(), by_name.at(prefix + "/BatchNorm/beta").value);
        std::fill(by_name.at(prefix + "/BatchNorm/moving_mean").value,
                  by_name.at(prefix + "/BatchNorm/moving_mean").value + c, 0.0f);
        std::fill(by_name.at(prefix + "/BatchNorm/moving_variance").value,
                  by_name.at(prefix + "/BatchNorm/moving_variance").value + c, 1.0f - eps);
    }
    const detail::Classifier cl = detail::tflite_classifier(m);
    detail::write_all(by_name.at("Logits/kernel"), cl.kernel);
    if (cl.bias.size() == 1001) detail::write_all(by_name.at("Logits/bias"), cl.bias);
    weights_changed(model);
}

/// The recommended full float ImageNet model: the `.npy` backbone and classifier bias
/// from `weights_dir/mobilenet_v2_1.0_224`, the classifier kernel dequantized from
/// `weights_dir/tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite`. When the `.npy` folder is
/// absent (weights fetched by `download_mobilenet_v2_weights` or
/// scripts/download_weights.sh), the whole PTQ model (int8 weights dequantized, batch norm
/// folded in; probabilities differ slightly, the top classes of the weights' README agree).
template <class Act>
void load_mobilenet_v2_imagenet(models::MobileNetV2<true, Act>& model,
                                const std::filesystem::path& weights_dir = data_dir() / "weights") {
    std::error_code ec;
    const auto npy = weights_dir / "mobilenet_v2_1.0_224";
    const auto ptq = weights_dir / "tflite" / "tf2_mobilenet_v2_1.0_224_ptq.tflite";
    if (!std::filesystem::is_directory(npy, ec) && std::filesystem::is_regular_file(ptq, ec)) {
        load_mobilenet_v2_tflite(model, ptq);
        return;
    }
    load_mobilenet_v2_npy(model, npy, ptq);
}

/// The ImageNet backbone (no classifier), for transfer learning: the float `.npy`
/// weights, or, when that folder is absent (weights fetched by
/// scripts/download_weights.sh), the backbone of the PTQ `.tflite` model (int8
/// weights dequantized, batch norm folded in; features differ slightly).
template <class Act>
void load_mobilenet_v2_imagenet(models::MobileNetV2<false, Act>& model,
                                const std::filesystem::path& weights_dir = data_dir() / "weights") {
    std::error_code ec;
    const auto npy = weights_dir / "mobilenet_v2_1.0_224";
    const auto ptq = weights_dir / "tflite" / "tf2_mobilenet_v2_1.0_224_ptq.tflite";
    if (!std::filesystem::is_directory(npy, ec) && std::filesystem::is_regular_file(ptq, ec)) {
        models::MobileNetV2<true, Act> full;
        full.build(224);
        load_mobilenet_v2_tflite(full, ptq);
        auto from = state_tensors(full);
        const auto to = state_tensors(model);
        for (const BufferRef& t : to)
            for (const BufferRef& f : from)
                if (f.name == t.name && f.size == t.size) std::copy(f.value, f.value + f.size, t.value);
        weights_changed(model);
        return;
    }
    load_mobilenet_v2_npy(model, npy);
}

}  // namespace typenet::io
