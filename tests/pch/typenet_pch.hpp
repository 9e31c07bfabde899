// Precompiled for meson's test programs (cpp_pch): typenet.hpp and doctest take most of
// a test file's compile time. (CMake precompiles typenet.hpp alone, shared with examples.)
#include <typenet/typenet.hpp>
#include <doctest/doctest.h>
