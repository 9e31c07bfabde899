// Writes the seed corpus of the fuzz targets, tests/fuzz/corpus/<target>/: a handful of small
// valid inputs (and a few invalid ones) per target, a few KB each in total.
//
// Rerun (from the repository root):
//     scripts/fuzz.sh --corpus
// which compiles this file with g++ (-Iinclude -Itests) and runs it with tests/fuzz/corpus as
// its argument. Everything is built here: images byte by byte (tests/data/helpers.hpp) and with
// stb_image_write, .tflite models with the test FlatBuffer writer (tests/io/flatbuffer_builder.hpp),
// archives and model files with typenet's own writers; the .npy/.npz seeds are the NumPy-written
// fixtures of tests/io/fixtures (tools/make_io_fixtures.py), copied. The output is deterministic.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <zlib.h>

#include "data/helpers.hpp"
#include "io/flatbuffer_builder.hpp"
#include "typenet/core/sequential.hpp"
#include "typenet/data/image.hpp"
#include "typenet/io/archive.hpp"
#include "typenet/io/model_file.hpp"
#include "typenet/layers/dense.hpp"
#include "typenet/layers/relu.hpp"
#include "typenet/layers/softmax.hpp"

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

namespace {

fs::path out_dir;

void write(const std::string& target, const std::string& name, const void* data, std::size_t size) {
    const fs::path dir = out_dir / target;
    fs::create_directories(dir);
    std::ofstream f(dir / name, std::ios::binary | std::ios::trunc);
    f.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!f) {
        std::fprintf(stderr, "cannot write %s\n", (dir / name).c_str());
        std::exit(1);
    }
}
void write(const std::string& target, const std::string& name, const Bytes& b) { write(target, name, b.data(), b.size()); }
void write(const std::string& target, const std::string& name, const std::vector<std::byte>& b) {
    write(target, name, b.data(), b.size());
}
void write(const std::string& target, const std::string& name, const std::string& s) {
    write(target, name, s.data(), s.size());
}

// ------------------------------------------------------------------------------ images
Bytes stb_encode(int kind, int w, int h, int comp, const std::uint8_t* px) {
    Bytes out;
    auto sink = [](void* ctx, void* data, int size) {
        auto* v = static_cast<Bytes*>(ctx);
        v->insert(v->end(), static_cast<std::uint8_t*>(data), static_cast<std::uint8_t*>(data) + size);
    };
    namespace stb = typenet::detail::stb;
    if (kind == 0) stb::stbi_write_png_to_func(sink, &out, w, h, comp, px, w * comp);
    if (kind == 1) stb::stbi_write_bmp_to_func(sink, &out, w, h, comp, px);
    if (kind == 2) stb::stbi_write_jpg_to_func(sink, &out, w, h, comp, px, 75);
    return out;
}

/// An uncompressed BMP with a BITMAPINFOHEADER and `bpp` bits per pixel (1, 4 or 8: palette of 2^bpp).
Bytes palette_bmp(int w, int h, int bpp, const Bytes& rows_bottom_up) {
    const std::uint32_t colors = 1u << bpp, offset = 14 + 40 + 4 * colors;
    Bytes b;
    auto le16 = [&](std::uint32_t v) { b.push_back(v & 0xFF), b.push_back((v >> 8) & 0xFF); };
    auto le32 = [&](std::uint32_t v) { le16(v & 0xFFFF), le16(v >> 16); };
    b.push_back('B'), b.push_back('M');
    le32(offset + static_cast<std::uint32_t>(rows_bottom_up.size()));
    le32(0);
    le32(offset);
    le32(40), le32(static_cast<std::uint32_t>(w)), le32(static_cast<std::uint32_t>(h));
    le16(1), le16(static_cast<std::uint32_t>(bpp));
    le32(0), le32(static_cast<std::uint32_t>(rows_bottom_up.size())), le32(2835), le32(2835), le32(colors), le32(0);
    for (std::uint32_t i = 0; i < colors; ++i) {
        const auto v = static_cast<std::uint8_t>(i * 255 / (colors - 1));
        b.push_back(v), b.push_back(static_cast<std::uint8_t>(255 - v)), b.push_back(v / 2), b.push_back(0);
    }
    b.insert(b.end(), rows_bottom_up.begin(), rows_bottom_up.end());
    return b;
}

/// A PNG from scanlines that already carry their filter bytes (`raw`), with chunks `before`
/// between IHDR and IDAT; `level` is zlib's compression level (0: stored blocks), `idats` the
/// number of IDAT chunks the stream is split into, `raw_deflate` drops the zlib header and
/// checksum (as Apple's CgBI PNGs do).
Bytes png_from_raw(std::uint32_t w, std::uint32_t h, int depth, int color, int interlace, const Bytes& raw,
                   const std::vector<std::pair<std::string, Bytes>>& before, int level = 6, int idats = 1,
                   bool raw_deflate = false) {
    Bytes out = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    Bytes ihdr;
    data_test::put_be32(ihdr, w);
    data_test::put_be32(ihdr, h);
    ihdr.push_back(static_cast<std::uint8_t>(depth));
    ihdr.push_back(static_cast<std::uint8_t>(color));
    ihdr.push_back(0), ihdr.push_back(0), ihdr.push_back(static_cast<std::uint8_t>(interlace));
    data_test::png_chunk(out, "IHDR", ihdr);
    for (const auto& [type, data] : before) data_test::png_chunk(out, type.c_str(), data);
    uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
    Bytes z(zlen);
    compress2(z.data(), &zlen, raw.data(), static_cast<uLong>(raw.size()), level);
    z.resize(zlen);
    if (raw_deflate) z = Bytes(z.begin() + 2, z.end() - 4);
    const std::size_t part = (z.size() + static_cast<std::size_t>(idats) - 1) / static_cast<std::size_t>(idats);
    for (std::size_t at = 0; at < z.size(); at += part)
        data_test::png_chunk(out, "IDAT", Bytes(z.begin() + static_cast<std::ptrdiff_t>(at),
                                                z.begin() + static_cast<std::ptrdiff_t>(std::min(z.size(), at + part))));
    data_test::png_chunk(out, "IEND", {});
    return out;
}

/// The filtered scanlines of an Adam7-interlaced 8-bit image with `c` bytes per pixel:
/// the 7 passes one after the other, each row with filter byte `filter` (0 to 4, with a
/// zero-filled "previous row" as the decoder assumes, so only 0 is exact: others are for
/// the fuzzer to start from).
Bytes adam7(std::uint32_t w, std::uint32_t h, int c, const Bytes& px, std::uint8_t filter) {
    static const int x0[7] = {0, 4, 0, 2, 0, 1, 0}, y0[7] = {0, 0, 4, 0, 2, 0, 1};
    static const int dx[7] = {8, 8, 4, 4, 2, 2, 1}, dy[7] = {8, 8, 8, 4, 4, 2, 2};
    Bytes raw;
    for (int p = 0; p < 7; ++p)
        for (std::uint32_t y = static_cast<std::uint32_t>(y0[p]); y < h; y += static_cast<std::uint32_t>(dy[p])) {
            if (static_cast<std::uint32_t>(x0[p]) >= w) break;
            raw.push_back(filter);
            for (std::uint32_t x = static_cast<std::uint32_t>(x0[p]); x < w; x += static_cast<std::uint32_t>(dx[p]))
                for (int k = 0; k < c; ++k) raw.push_back(px[(y * w + x) * static_cast<std::uint32_t>(c) + static_cast<std::uint32_t>(k)]);
        }
    return raw;
}

/// Rows of `row_bytes` bytes each with filter byte `filter` in front.
Bytes filtered(const Bytes& px, std::size_t row_bytes, const std::vector<std::uint8_t>& filters) {
    Bytes raw;
    for (std::size_t y = 0; y * row_bytes < px.size(); ++y) {
        raw.push_back(filters[y % filters.size()]);
        raw.insert(raw.end(), px.begin() + static_cast<std::ptrdiff_t>(y * row_bytes),
                   px.begin() + static_cast<std::ptrdiff_t>((y + 1) * row_bytes));
    }
    return raw;
}

void images() {
    using data_test::make_gif;
    using data_test::make_png;
    const Bytes rgb = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90};
    write("image", "rgb_3x2.png", make_png(3, 2, 8, 2, rgb, 9));
    write("image", "gray16_2x1.png", make_png(2, 1, 16, 0, {0x12, 0x34, 0xAB, 0xCD}, 4));
    write("image", "palette_trns.png",
          make_png(3, 1, 8, 3, {0, 1, 2}, 3, {{"PLTE", {255, 0, 0, 0, 255, 0, 0, 0, 255}}, {"tRNS", {255, 0}}}));
    write("image", "gray2bit_4x1.png", make_png(4, 1, 2, 0, {0x1B}, 1));
    const std::uint8_t ga[8] = {0, 0, 0, 128, 100, 255, 200, 7};
    write("image", "gray_alpha_2x2.png", stb_encode(0, 2, 2, 2, ga));
    std::uint8_t px[16 * 16 * 3];
    for (int i = 0; i < 16 * 16 * 3; ++i) px[i] = static_cast<std::uint8_t>(i * 7 + (i / 48) * 13);
    write("image", "color_16x16.jpg", stb_encode(2, 16, 16, 3, px));  // 4:2:0 (stb subsamples below quality 90)
    write("image", "gray_8x8.jpg", stb_encode(2, 8, 8, 1, px));
    write("image", "rgb_2x2.bmp", stb_encode(1, 2, 2, 3, rgb.data()));
    write("image", "rgba_2x1.bmp", stb_encode(1, 2, 1, 4, ga));
    write("image", "pal8_2x2.bmp", palette_bmp(2, 2, 8, {0, 255, 0, 0, 128, 7, 0, 0}));
    write("image", "pal1_3x2.bmp", palette_bmp(3, 2, 1, {0xA0, 0, 0, 0, 0x40, 0, 0, 0}));
    const Bytes pal = {255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 8, 7};
    write("image", "palette_2x2.gif", make_gif(2, 2, {0, 1, 2, 3}, pal));
    write("image", "transparent_2frames.gif", make_gif(2, 1, {3, 1}, pal, 3, 1));
    // Interlaced (Adam7), with every filter type, in stored deflate blocks, split over three
    // IDAT chunks, RGB and gray 16-bit with a tRNS colour, RGBA 16-bit, Apple's CgBI variant.
    Bytes px9(9 * 5 * 3);
    for (std::size_t i = 0; i < px9.size(); ++i) px9[i] = static_cast<std::uint8_t>(i * 37);
    write("image", "interlaced_9x5.png", png_from_raw(9, 5, 8, 2, 1, adam7(9, 5, 3, px9, 0), {}));
    write("image", "filters_9x5.png", png_from_raw(9, 5, 8, 2, 0, filtered(px9, 27, {0, 1, 2, 3, 4}), {}));
    write("image", "stored_3idat.png", png_from_raw(3, 2, 8, 2, 0, filtered(rgb, 9, {0}), {}, 0, 3));
    write("image", "rgb_trns.png", png_from_raw(3, 2, 8, 2, 0, filtered(rgb, 9, {0}), {{"tRNS", {0, 0, 0, 255, 0, 0}}}));
    write("image", "gray16_trns.png",
          png_from_raw(2, 1, 16, 0, 0, filtered({0x12, 0x34, 0xAB, 0xCD}, 4, {0}), {{"tRNS", {0x12, 0x34}}}));
    write("image", "rgba16_1x2.png",
          png_from_raw(1, 2, 16, 6, 0, filtered({1, 2, 3, 4, 5, 6, 0x80, 0, 9, 8, 7, 6, 5, 4, 0xFF, 0xFF}, 8, {0, 2}), {}));
    write("image", "cgbi_2x1.png", png_from_raw(2, 1, 8, 6, 0, filtered({10, 20, 30, 128, 1, 2, 3, 255}, 8, {0}),
                                               {{"CgBI", {0x50, 0x00, 0x20, 0x02}}}, 6, 1, true));
    Bytes cut = make_png(3, 2, 8, 2, rgb, 9);
    cut.resize(cut.size() - 20);
    write("image", "bad_truncated.png", cut);
    write("image", "bad_text.txt", std::string("not an image\n"));
}

// ------------------------------------------------------------------------ npy and npz
void numpy_fixtures(const fs::path& fixtures) {
    for (const auto& e : fs::directory_iterator(fixtures)) {
        const std::string ext = e.path().extension().string();
        if (ext != ".npy" && ext != ".npz") continue;
        std::ifstream f(e.path(), std::ios::binary);
        const Bytes b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        write(ext == ".npy" ? "npy" : "npz", e.path().filename().string(), b);
    }
}

// ---------------------------------------------------------------------------- tflite
std::vector<std::uint8_t> raw_i8(std::vector<std::int8_t> v) { return {v.begin(), v.end()}; }
template <class T>
std::vector<std::uint8_t> raw(const std::vector<T>& v) {
    std::vector<std::uint8_t> b(v.size() * sizeof(T));
    std::memcpy(b.data(), v.data(), b.size());
    return b;
}

fbb::NodePtr tfl_buffer(const std::vector<std::uint8_t>& bytes) {
    if (bytes.empty()) return fbb::table({});
    return fbb::table({{0, fbb::ref(fbb::vec(bytes))}});
}
fbb::NodePtr tfl_tensor(const std::string& name, std::vector<std::int32_t> shape, std::int8_t type, std::uint32_t buf,
                        fbb::NodePtr q = nullptr) {
    std::vector<std::pair<int, fbb::Field>> f{{0, fbb::ref(fbb::vec(shape))},
                                              {1, fbb::scalar(type)},
                                              {2, fbb::scalar(buf)},
                                              {3, fbb::ref(fbb::str(name))}};
    if (q) f.push_back({4, fbb::ref(q)});
    return fbb::table(std::move(f));
}
fbb::NodePtr tfl_quant(std::vector<float> scale, std::vector<std::int64_t> zp, std::int32_t dim) {
    return fbb::table({{2, fbb::ref(fbb::vec(scale))}, {3, fbb::ref(fbb::vec(zp))}, {6, fbb::scalar(dim)}});
}
fbb::NodePtr tfl_op(std::uint32_t code, std::vector<std::int32_t> in, std::vector<std::int32_t> out,
                    std::uint8_t tag = 0, fbb::NodePtr options = nullptr) {
    std::vector<std::pair<int, fbb::Field>> f{
        {0, fbb::scalar(code)}, {1, fbb::ref(fbb::vec(in))}, {2, fbb::ref(fbb::vec(out))}};
    if (tag) f.push_back({3, fbb::scalar(tag)});
    if (options) f.push_back({4, fbb::ref(options)});
    return fbb::table(std::move(f));
}
fbb::NodePtr tfl_opcode(std::int8_t deprecated, std::int32_t code) {
    return fbb::table({{0, fbb::scalar(deprecated)}, {3, fbb::scalar(code)}});
}
std::vector<std::byte> tfl_model(std::vector<fbb::NodePtr> opcodes, std::vector<fbb::NodePtr> buffers,
                                 std::vector<fbb::NodePtr> tensors, std::vector<fbb::NodePtr> ops,
                                 std::vector<std::int32_t> inputs, std::vector<std::int32_t> outputs) {
    auto subgraph = fbb::table({{0, fbb::ref(fbb::tables(std::move(tensors)))},
                                {1, fbb::ref(fbb::vec(inputs))},
                                {2, fbb::ref(fbb::vec(outputs))},
                                {3, fbb::ref(fbb::tables(std::move(ops)))},
                                {4, fbb::ref(fbb::str("main"))}});
    auto model = fbb::table({{0, fbb::scalar<std::uint32_t>(3)},
                             {1, fbb::ref(fbb::tables(std::move(opcodes)))},
                             {2, fbb::ref(fbb::tables({subgraph}))},
                             {3, fbb::ref(fbb::str("seed"))},
                             {4, fbb::ref(fbb::tables(std::move(buffers)))}});
    return fbb::finish(model, "TFL3");
}

void tflite() {
    using fbb::ref;
    using fbb::scalar;
    // A conv block as MobileNetV2's quantized model has it: QUANTIZE, CONV_2D (per-channel
    // int8 weights, int32 bias), DEPTHWISE_CONV_2D, ADD, MEAN, FULLY_CONNECTED, RESHAPE, SOFTMAX.
    const auto conv_block = tfl_model(
        {tfl_opcode(114, 114), tfl_opcode(3, 3), tfl_opcode(4, 4), tfl_opcode(0, 0), tfl_opcode(40, 40),
         tfl_opcode(9, 9), tfl_opcode(22, 22), tfl_opcode(25, 25)},
        {tfl_buffer({}), tfl_buffer(raw_i8({-128, 0, 127, 5, -5, 10})), tfl_buffer(raw<std::int32_t>({100, -200, 7})),
         tfl_buffer(raw_i8({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
                            26, 27})),
         tfl_buffer(raw<std::int32_t>({1, -1}))},
        {tfl_tensor("input", {1, 4, 4, 2}, 0, 0),
         tfl_tensor("input_q", {1, 4, 4, 2}, 9, 0, tfl_quant({0.0078125f}, {-1}, 0)),
         tfl_tensor("conv/weights", {3, 1, 1, 2}, 9, 1, tfl_quant({0.5f, 0.25f, 2.0f}, {0, 0, 0}, 0)),
         tfl_tensor("conv/bias", {3}, 2, 2, tfl_quant({0.5f, 0.25f, 0.125f}, {0, 0, 0}, 0)),
         tfl_tensor("conv", {1, 2, 2, 3}, 9, 0, tfl_quant({0.02f}, {-128}, 0)),
         tfl_tensor("dw/weights", {1, 3, 3, 3}, 9, 3, tfl_quant({0.1f, 0.2f, 0.3f}, {0, 0, 0}, 3)),
         tfl_tensor("dw", {1, 2, 2, 3}, 9, 0, tfl_quant({0.02f}, {-128}, 0)),
         tfl_tensor("add", {1, 2, 2, 3}, 9, 0, tfl_quant({0.04f}, {-128}, 0)),
         tfl_tensor("mean", {1, 3}, 9, 0, tfl_quant({0.04f}, {-128}, 0)),
         tfl_tensor("shape", {2}, 2, 4),
         tfl_tensor("logits", {1, 3}, 9, 0, tfl_quant({0.1f}, {3}, 0)),
         tfl_tensor("probs", {1, 3}, 9, 0, tfl_quant({0.00390625f}, {-128}, 0))},
        {tfl_op(0, {0}, {1}, 89, fbb::table({})),
         tfl_op(1, {1, 2, 3}, {4}, 1,
                fbb::table({{0, scalar<std::int8_t>(1)},
                            {1, scalar<std::int32_t>(2)},
                            {2, scalar<std::int32_t>(2)},
                            {3, scalar<std::int8_t>(3)}})),
         tfl_op(2, {4, 5, -1}, {6}, 2,
                fbb::table({{0, scalar<std::int8_t>(0)},
                            {1, scalar<std::int32_t>(1)},
                            {2, scalar<std::int32_t>(1)},
                            {3, scalar<std::int32_t>(1)},
                            {4, scalar<std::int8_t>(3)}})),
         tfl_op(3, {4, 6}, {7}, 11, fbb::table({{0, scalar<std::int8_t>(0)}})),
         tfl_op(4, {7, 9}, {8}, 27, fbb::table({{0, scalar<std::uint8_t>(0)}})),
         tfl_op(5, {8, 2, -1}, {10}, 8, fbb::table({{0, scalar<std::int8_t>(0)}})),
         tfl_op(6, {10, 9}, {10}, 17, fbb::table({{0, ref(fbb::vec(std::vector<std::int32_t>{1, 3}))}})),
         tfl_op(7, {10}, {11}, 9, fbb::table({{0, scalar(1.0f)}}))},
        {0}, {11});
    write("tflite", "conv_block.tflite", conv_block);

    // Float weights, a pooling operator, a custom operator and an operator code above 127.
    auto custom = fbb::table({{0, scalar<std::int8_t>(32)}, {1, ref(fbb::str("MyOp"))}, {2, scalar<std::int32_t>(2)},
                              {3, scalar<std::int32_t>(32)}});
    const auto pool_float = tfl_model(
        {tfl_opcode(1, 1), tfl_opcode(17, 17), custom, tfl_opcode(127, 150), tfl_opcode(6, 6)},
        {tfl_buffer({}), tfl_buffer(raw<float>({1.5f, -2.0f, 0.25f, 8.0f})), tfl_buffer(raw<std::uint8_t>({0, 128, 255, 3})),
         tfl_buffer(raw<std::int16_t>({-300, 300}))},
        {tfl_tensor("x", {1, 2, 2, 1}, 0, 1), tfl_tensor("u8", {2, 2}, 3, 2, tfl_quant({0.5f}, {128}, 0)),
         tfl_tensor("i16", {2}, 7, 3, tfl_quant({0.01f}, {}, 0)), tfl_tensor("pooled", {1, 1, 1, 1}, 0, 0)},
        {tfl_op(0, {0}, {3}, 5,
                fbb::table({{0, scalar<std::int8_t>(1)},
                            {1, scalar<std::int32_t>(2)},
                            {2, scalar<std::int32_t>(2)},
                            {3, scalar<std::int32_t>(2)},
                            {4, scalar<std::int32_t>(2)},
                            {5, scalar<std::int8_t>(0)}})),
         tfl_op(1, {0}, {3}, 5,
                fbb::table({{0, scalar<std::int8_t>(0)},
                            {1, scalar<std::int32_t>(1)},
                            {2, scalar<std::int32_t>(1)},
                            {3, scalar<std::int32_t>(1)},
                            {4, scalar<std::int32_t>(1)},
                            {5, scalar<std::int8_t>(1)}})),
         tfl_op(2, {3}, {3}), tfl_op(3, {3, 1}, {3}), tfl_op(4, {1}, {0}, 38, fbb::table({}))},
        {0}, {3});
    write("tflite", "pool_float.tflite", pool_float);

    // The smallest model: one subgraph with one tensor and nothing else.
    const auto tiny = tfl_model({}, {tfl_buffer({})}, {tfl_tensor("t", {1}, 0, 0)}, {}, {0}, {0});
    write("tflite", "tiny.tflite", tiny);
    // A buffer kept outside the flatbuffer (offset and size, as models over 2 GiB have): 8 bytes
    // appended to the file.
    {
        const auto base_parts = [&](std::uint64_t offset) {
            return tfl_model({}, {tfl_buffer({}), fbb::table({{1, scalar(offset)}, {2, scalar<std::uint64_t>(8)}})},
                             {tfl_tensor("ext", {2}, 0, 1)}, {}, {0}, {0});
        };
        auto b = base_parts(0);
        const std::uint64_t at = b.size();
        b = base_parts(at);
        const float v[2] = {0.5f, -4.0f};
        const auto* p = reinterpret_cast<const std::byte*>(v);
        b.insert(b.end(), p, p + 8);
        write("tflite", "external_buffer.tflite", b);
    }
    auto wrong_ident = tiny;
    std::memcpy(wrong_ident.data() + 4, "TFL2", 4);
    write("tflite", "bad_identifier.tflite", wrong_ident);
}

// --------------------------------------------------------------------- archive, model
void archives() {
    using typenet::io::Archive;
    Archive empty;
    write("archive", "empty.tnet", typenet::io::encode_archive(empty));
    Archive meta;
    meta.meta["format"] = "typenet-model";
    meta.meta["class_names"] = "rock,paper,scissors";
    write("archive", "meta_only.tnet", typenet::io::encode_archive(meta));
    Archive t;
    t.meta["k"] = "v";
    t.tensors.push_back({"scalar", {}, {2.5f}});
    t.tensors.push_back({"vector", {3}, {1.0f, -2.0f, 0.5f}});
    t.tensors.push_back({"cube", {2, 1, 2}, {1, 2, 3, 4}});
    t.tensors.push_back({"empty", {0, 5}, {}});
    write("archive", "tensors.tnet", typenet::io::encode_archive(t));
    auto newer = typenet::io::encode_archive(meta);
    newer[8] = std::byte{2};  // format version 2 (and so a checksum mismatch)
    write("archive", "bad_version.tnet", newer);
}

void models() {
    using Net = typenet::Sequential<typenet::Dense<4, typenet::ReLU>, typenet::Dense<3, typenet::Softmax>>;
    const fs::path dir = out_dir / "model";
    fs::create_directories(dir);
    Net net;
    net.build({2}, 7);
    typenet::io::save_model(net, dir / "plain.tnet");
    typenet::io::SaveOptions o;
    o.meta["class_names"] = "rock,paper,scissors";
    o.store_reference = true;
    typenet::Tensor<2> x(typenet::Shape<2>{2, 2});
    x(0, 0) = 0.5f, x(0, 1) = -1.0f, x(1, 0) = 2.0f, x(1, 1) = 0.25f;
    typenet::io::save_model(net, dir / "with_reference.tnet", o, &x);
    // Another architecture (a mismatch_error on load).
    typenet::Sequential<typenet::Dense<3, typenet::Softmax>> other;
    other.build({2}, 7);
    typenet::io::save_model(other, dir / "other_architecture.tnet");
}

// ---------------------------------------------------------------------------- labels
void labels() {
    write("labels", "three.txt", std::string("background\ntench\ngoldfish\n"));
    write("labels", "crlf_bom.txt", std::string("\xEF\xBB\xBFrock\r\npaper\r\nscissors"));
    write("labels", "trailing_blank.txt", std::string("a\nb\n\n\n"));
    write("labels", "bad_blank_between.txt", std::string("a\n\nb\n"));
    write("labels", "bad_nul.txt", std::string("a\0b\n", 4));
    write("labels", "utf8.txt", std::string("caf\xC3\xA9\n\xE7\x8C\xAB\n"));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUTPUT_DIR (tests/fuzz/corpus)\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    for (const char* t : {"image", "npy", "npz", "tflite", "archive", "model", "labels"}) fs::remove_all(out_dir / t);
    images();
    numpy_fixtures(fs::path(TYPENET_SOURCE_DIR) / "tests" / "io" / "fixtures");
    tflite();
    archives();
    models();
    labels();
    return 0;
}
