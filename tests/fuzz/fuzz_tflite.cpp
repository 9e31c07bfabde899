// libFuzzer target `tflite`: typenet::io::parse_tflite on arbitrary bytes and, when it parses,
// typenet::io::dequantize on every tensor of every subgraph (see scripts/fuzz.sh).
#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"
#include "typenet/io/tflite.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    typenet::io::TfliteModel m;
    try {
        m = typenet::io::parse_tflite(fuzz::as_bytes(data, size), "fuzz");
    } catch (const typenet::error&) {
        return 0;
    }
    FUZZ_CHECK(!m.subgraphs.empty());
    for (const auto& g : m.subgraphs) {
        for (const auto& op : g.operators) {
            FUZZ_CHECK(op.opcode_index < m.operator_codes.size());
            for (auto i : op.inputs) FUZZ_CHECK(i >= -1 && i < static_cast<std::int64_t>(g.tensors.size()));
            for (auto i : op.outputs) FUZZ_CHECK(i >= -1 && i < static_cast<std::int64_t>(g.tensors.size()));
        }
        for (const auto& t : g.tensors) {
            FUZZ_CHECK(t.buffer < m.buffers.size());
            try {
                const auto values = typenet::io::dequantize(m, t);
                FUZZ_CHECK(values.size() == fuzz::product(t.shape));
            } catch (const typenet::error&) {
            }
        }
    }
    return 0;
}
