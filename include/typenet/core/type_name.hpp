/// @file core/type_name.hpp
/// Readable names of types, computed by the compiler (used in summaries, error
/// messages and the architecture signature of saved models).
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace typenet {

namespace detail {
template <class T>
constexpr std::string_view raw_type_name() noexcept {
#if defined(__clang__) || defined(__GNUC__)
    std::string_view p = __PRETTY_FUNCTION__;
    const auto start = p.find("T = ") + 4;
    auto end = p.find_first_of(";]", start);
    return p.substr(start, end - start);
#else
    return "unknown";
#endif
}
}  // namespace detail

/// The full name of `T` as the compiler spells it, e.g. `typenet::Dense<3, typenet::Softmax>`.
template <class T>
std::string type_name() {
    return std::string(detail::raw_type_name<T>());
}

/// The name of `T` without namespaces, e.g. `Dense<3, Softmax>`.
template <class T>
std::string short_type_name() {
    std::string s = type_name<T>();
    for (const char* anon : {"(anonymous namespace)::", "{anonymous}::"})
        for (auto k = s.find(anon); k != std::string::npos; k = s.find(anon)) s.erase(k, std::string_view(anon).size());
    std::string out;
    out.reserve(s.size());
    // Drop every "ns::" qualifier (identifier followed by ::).
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t j = i;
        while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
        if (j > i && j + 1 < s.size() && s[j] == ':' && s[j + 1] == ':') {
            i = j + 2;
            continue;
        }
        if (j > i) {
            out.append(s, i, j - i);
            i = j;
        } else {
            out.push_back(s[i]);
            ++i;
        }
    }
    return out;
}

/// The name of `T` without namespaces and template arguments, e.g. `Dense`.
template <class T>
std::string base_type_name() {
    std::string s = short_type_name<T>();
    return s.substr(0, s.find('<'));
}

}  // namespace typenet
