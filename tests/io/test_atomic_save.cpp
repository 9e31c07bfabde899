// A crash while saving never destroys the previous file: a child process saving a
// large model is killed with SIGKILL at several moments of the write; the file then
// always loads and holds either the old or the new weights, never a mixture; and the
// next successful save removes the temporary the killed writer left behind.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include "typenet/io/model_file.hpp"
#include "typenet/typenet.hpp"

using namespace typenet;
namespace fs = std::filesystem;

namespace {
using Big = Sequential<Dense<1024, ReLU>, Dense<1024, ReLU>, Dense<10, Softmax>>;  // 2.1 M parameters, 8.4 MB

void fill(Big& m, float v) {
    for (const BufferRef& t : state_tensors(m)) std::fill(t.value, t.value + t.size, v);
    weights_changed(m);
}
// The single value every parameter holds (NaN when they differ: a mixture).
float uniform_value(Big& m) {
    float first = 0;
    bool have = false;
    for (const BufferRef& t : state_tensors(m))
        for (std::size_t i = 0; i < t.size; ++i) {
            if (!have) first = t.value[i], have = true;
            else if (t.value[i] != first) return NAN;
        }
    return first;
}
std::size_t temporaries(const fs::path& dir) {
    std::size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().find(".tmp.") != std::string::npos;
    return n;
}
}  // namespace

TEST_CASE("SIGKILL during save_model leaves the previous file intact") {
    const fs::path dir = fs::temp_directory_path() / ("typenet_kill_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const fs::path file = dir / "model.tnet";
    Big m;
    m.build({64}, 1);
    fill(m, 1.0f);
    io::save_model(m, file);

    // How long one save takes here, to spread the kills over a write.
    const auto t0 = std::chrono::steady_clock::now();
    io::save_model(m, file);
    const double save_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();

    std::size_t saw_old = 0, saw_new = 0, killed_mid_write = 0;
    const int kills = 12;
    for (int k = 0; k < kills; ++k) {
        int ready[2];
        REQUIRE(::pipe(ready) == 0);
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            // The child writes new weights (2.0) over and over until killed; it tells the
            // parent when its first write begins.
            ::close(ready[0]);
            fill(m, 2.0f);
            const char go = 1;
            if (::write(ready[1], &go, 1) != 1) ::_exit(1);
            for (;;) io::save_model(m, file);
        }
        ::close(ready[1]);
        char go = 0;
        REQUIRE(::read(ready[0], &go, 1) == 1);
        ::close(ready[0]);
        if (k % 2 == 0) {
            // Kill at moments spread over about three saves.
            std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long>(save_us * 3.0 * k / kills)));
        } else {
            // Kill as soon as the writer's temporary appears: most of a save is spent
            // serialising in memory, and on a fast file system (tmpfs) the temporary
            // exists for a small part of it, which timed kills alone may all miss.
            const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
            while (temporaries(dir) == 0 && std::chrono::steady_clock::now() < give_up) {
            }
        }
        ::kill(child, SIGKILL);
        int status = 0;
        ::waitpid(child, &status, 0);
        CHECK(WIFSIGNALED(status));
        killed_mid_write += temporaries(dir) > 0;
        Big loaded;
        REQUIRE_NOTHROW(io::load_model(loaded, file));
        const float v = uniform_value(loaded);
        CHECK((v == 1.0f || v == 2.0f));  // old or new, never a mixture
        saw_old += v == 1.0f;
        saw_new += v == 2.0f;
        fill(m, 1.0f);
        io::save_model(m, file);  // back to the old weights for the next round
        CHECK(temporaries(dir) == 0);  // the killed writer's temporary is gone
    }
    MESSAGE("save takes " << save_us / 1000 << " ms; kills: " << kills << ", during a write (temporary present): " << killed_mid_write
                      << ", file afterwards old: " << saw_old << ", new: " << saw_new);
    CHECK(killed_mid_write > 0);
    fs::remove_all(dir);
}
