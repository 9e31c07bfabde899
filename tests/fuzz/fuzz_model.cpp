// libFuzzer target `model`: the whole typenet::io::load_model path (archive parsing, metadata,
// input shape, signature and tensor checks, the stored reference output) into a small
// Sequential<Dense<4, ReLU>, Dense<3, Softmax>>, once unbuilt and once built for 2 features.
// The bytes, with the archive's size field and CRC-32 made right (so that mutations get past
// the checksum), are written to one file on a tmpfs (/dev/shm when it exists) that every input
// reuses (see scripts/fuzz.sh).
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "fuzz_common.hpp"
#include "typenet/core/sequential.hpp"
#include "typenet/io/model_file.hpp"
#include "typenet/layers/dense.hpp"
#include "typenet/layers/relu.hpp"
#include "typenet/layers/softmax.hpp"

namespace {

using Net = typenet::Sequential<typenet::Dense<4, typenet::ReLU>, typenet::Dense<3, typenet::Softmax>>;

const std::filesystem::path& model_path() {
    static const std::filesystem::path p = [] {
        const std::filesystem::path dir =
            std::filesystem::is_directory("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                      : std::filesystem::temp_directory_path();
        return dir / ("typenet-fuzz-model-" + std::to_string(::getpid()) + ".tnet");
    }();
    return p;
}

void write_all(std::span<const std::byte> bytes) {
    const int fd = ::open(model_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0);
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        FUZZ_CHECK(n > 0);
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
}

struct RemoveAtExit {
    ~RemoveAtExit() {
        std::error_code ec;
        std::filesystem::remove(model_path(), ec);
    }
} remove_at_exit;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto fixed = fuzz::with_fixed_archive_checksum(fuzz::as_bytes(data, size));
    write_all(fixed.empty() ? fuzz::as_bytes(data, size) : std::span<const std::byte>(fixed));
    // Unbuilt: load_model builds it for the input shape the file states.
    Net fresh;
    try {
        (void)typenet::io::load_model(fresh, model_path());
        FUZZ_CHECK(fresh.built());
    } catch (const typenet::error&) {
    }
    // Built for 2 features (as the seeds): the file's input shape is not used, so the
    // signature, tensor and reference checks are reached whatever it says.
    Net built;
    built.build({2}, 1);
    try {
        (void)typenet::io::load_model(built, model_path());
    } catch (const typenet::error&) {
    }
    return 0;
}
