// libFuzzer target `npz`: typenet::io::parse_npz (zip, deflate, CRC-32, .npy entries) on
// arbitrary bytes (see scripts/fuzz.sh).
#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"
#include "typenet/io/npz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const auto arrays = typenet::io::parse_npz(fuzz::as_bytes(data, size), "fuzz");
        for (const auto& [name, a] : arrays) FUZZ_CHECK(a.data.size() == fuzz::product(a.shape));
    } catch (const typenet::error&) {
    }
    return 0;
}
