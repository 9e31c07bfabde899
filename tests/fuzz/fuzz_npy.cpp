// libFuzzer target `npy`: typenet::io::parse_npy on arbitrary bytes (see scripts/fuzz.sh).
#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"
#include "typenet/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const typenet::io::NpyArray a = typenet::io::parse_npy(fuzz::as_bytes(data, size), "fuzz");
        FUZZ_CHECK(a.data.size() == fuzz::product(a.shape));
        FUZZ_CHECK(a.shape.size() <= 64);
    } catch (const typenet::error&) {
    }
    return 0;
}
