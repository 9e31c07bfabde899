// libFuzzer target `labels`: typenet::io::parse_labels on arbitrary bytes (see scripts/fuzz.sh).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_common.hpp"
#include "typenet/io/labels.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const auto labels =
            typenet::io::parse_labels(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
        FUZZ_CHECK(!labels.empty());
        for (const auto& l : labels) {
            FUZZ_CHECK(!l.empty());
            FUZZ_CHECK(l.find('\n') == std::string_view::npos);
            FUZZ_CHECK(l.find('\0') == std::string_view::npos);
        }
    } catch (const typenet::error&) {
    }
    return 0;
}
