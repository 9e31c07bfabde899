// kernels/cache.hpp: the L2 size the kernels plan for, checked against the kernel's own
// account of the caches (sysfs), an independent source from the C library's CPUID
// reading; and the fused block's buffer budget derived from it.
#include <doctest/doctest.h>

#include <cctype>
#include <fstream>
#include <string>

#include "typenet/kernels/cache.hpp"
#include "typenet/kernels/inverted_residual.hpp"

namespace {

/// The size of cpu0's level-2 cache in bytes from /sys, or 0 when not available.
std::size_t sysfs_l2_bytes() {
    for (int i = 0; i < 8; ++i) {
        const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
        std::ifstream level(dir + "level"), size(dir + "size");
        int lv = 0;
        std::string sz;
        if (!(level >> lv) || !(size >> sz)) continue;
        if (lv != 2 || sz.empty()) continue;
        std::size_t n = 0, k = 0;
        while (k < sz.size() && std::isdigit(static_cast<unsigned char>(sz[k]))) n = n * 10 + std::size_t(sz[k++] - '0');
        const char unit = k < sz.size() ? sz[k] : ' ';
        return unit == 'K' ? n << 10 : unit == 'M' ? n << 20 : n;
    }
    return 0;
}

}  // namespace

TEST_CASE("l2_cache_bytes: a per-core L2 size, the one the system reports") {
    using typenet::kernels::l2_cache_bytes;
    const std::size_t l2 = l2_cache_bytes();
    MESSAGE("L2 per core: " << l2 / 1024 << " KB");
    CHECK(l2 >= (std::size_t(64) << 10));
    CHECK(l2 <= (std::size_t(64) << 20));
    CHECK(l2_cache_bytes() == l2);  // read once
    const std::size_t sys = sysfs_l2_bytes();
    if (sys >= (std::size_t(64) << 10) && sys <= (std::size_t(64) << 20) && TYPENET_L2_CACHE_BYTES == 0) {
        MESSAGE("sysfs: " << sys / 1024 << " KB");
        CHECK(l2 == sys);
    } else {
        MESSAGE("no usable L2 size in sysfs: the range checks only");
    }
}

TEST_CASE("the fused block plans its row buffers for 3/8 of L2, at most 384 KB") {
    using namespace typenet::kernels;
    const std::size_t b = detail::band_budget_bytes();
    CHECK(b <= 384u * 1024u);
    CHECK(b <= l2_cache_bytes() / 8 * 3);
    CHECK((b == 384u * 1024u || b == l2_cache_bytes() / 8 * 3));
    // And a planned block keeps to it: block 1 of MobileNetV2 (112x112x96 expanded, stride 2).
    detail::FusedBlock f;
    f.g = ConvGeometry::same(1, 112, 112, 96, 3, 3, 2, 2);
    f.cin = 16;
    f.cout = 24;
    float y = 0;
    f.y = &y;
    detail::plan_bands(f);
    const std::size_t bytes = (f.ring * f.g.w * f.g.c + f.band * f.g.ow * f.g.c) * sizeof(float);
    MESSAGE("block 1: band " << f.band << " rows, ring " << f.ring << " rows, " << bytes / 1024 << " KB");
    // Per band row: its output row and the stride's new input rows; a band never has
    // fewer rows than give 64 GEMM rows (here 2), whatever the budget.
    const std::size_t per_row = (f.g.ow * f.g.c + f.g.sh * f.g.w * f.g.c) * sizeof(float);
    const std::size_t min_band = std::min<std::size_t>(f.g.oh, (64 + f.g.ow - 1) / f.g.ow);
    CHECK(f.band >= min_band);
    CHECK(f.ring == (f.band - 1) * f.g.sh + f.g.kh);
    if (f.band > min_band) {
        CHECK(f.band * per_row <= b);
    } else {
        CHECK(f.band == std::max<std::size_t>(min_band, b / (per_row + sizeof(float))));
    }
}
