// core/paths.hpp: where the data folder and the download cache are.
#include <doctest/doctest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "typenet/core/paths.hpp"

using namespace typenet;

namespace {

// Sets (or unsets) an environment variable for the scope, then puts the old value back.
struct EnvGuard {
    std::string name;
    std::optional<std::string> old;
    EnvGuard(const char* n, const char* value) : name(n) {
        if (const char* v = std::getenv(n)) old = v;
        if (value) ::setenv(n, value, 1);
        else ::unsetenv(n);
    }
    ~EnvGuard() {
        if (old) ::setenv(name.c_str(), old->c_str(), 1);
        else ::unsetenv(name.c_str());
    }
};

}  // namespace

TEST_CASE("cache_dir: XDG_CACHE_HOME, else HOME/.cache, else the working directory") {
    {
        EnvGuard x("XDG_CACHE_HOME", "/xdg/cache"), h("HOME", "/home/someone");
        CHECK(cache_dir() == std::filesystem::path("/xdg/cache/typenet"));
    }
    {
        EnvGuard x("XDG_CACHE_HOME", ""), h("HOME", "/home/someone");
        CHECK(cache_dir() == std::filesystem::path("/home/someone/.cache/typenet"));
    }
    {
        EnvGuard x("XDG_CACHE_HOME", nullptr), h("HOME", nullptr);
        CHECK(cache_dir() == std::filesystem::path("typenet-data"));
    }
}

TEST_CASE("data_dir: TYPENET_DATA wins; env_or falls back on unset or empty") {
    {
        EnvGuard d("TYPENET_DATA", "/some/where");
        CHECK(data_dir() == std::filesystem::path("/some/where"));
    }
    EnvGuard e("TYPENET_TEST_ENV_OR", "");
    CHECK(env_or("TYPENET_TEST_ENV_OR", "fallback") == "fallback");
    ::setenv("TYPENET_TEST_ENV_OR", "set", 1);
    CHECK(env_or("TYPENET_TEST_ENV_OR", "fallback") == "set");
}
