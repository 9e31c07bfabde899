// libFuzzer target `archive`: typenet::io::parse_archive (typenet's model container) on
// arbitrary bytes, then on the same bytes with the size field and CRC-32 made right, so that
// the mutations also reach the parser behind the checksum (see scripts/fuzz.sh).
#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"
#include "typenet/io/archive.hpp"

namespace {
void parse(std::span<const std::byte> bytes) {
    try {
        const typenet::io::Archive a = typenet::io::parse_archive(bytes, "fuzz");
        for (const auto& t : a.tensors) {
            FUZZ_CHECK(!t.name.empty());
            FUZZ_CHECK(t.shape.size() <= typenet::io::archive_max_rank);
            FUZZ_CHECK(t.data.size() == fuzz::product(t.shape));
        }
        for (const auto& [key, value] : a.meta) FUZZ_CHECK(!key.empty());
    } catch (const typenet::error&) {
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    parse(fuzz::as_bytes(data, size));
    const auto fixed = fuzz::with_fixed_archive_checksum(fuzz::as_bytes(data, size));
    if (!fixed.empty()) parse(fixed);
    return 0;
}
