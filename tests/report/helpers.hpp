// Helpers shared by the tests of tests/report: temporary folders, pixel queries on
// decoded pictures, and a small XML well-formedness checker for the SVG output.
#pragma once

#include <unistd.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "typenet/data/image.hpp"
#include "typenet/report/canvas.hpp"

namespace report_test {

using typenet::report::Color;
using typenet::report::Rect;

/// A fresh, empty temporary folder, removed with everything in it at the end of the scope.
struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string& tag) {
        static int n = 0;
        path = std::filesystem::temp_directory_path() /
               ("typenet_report_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::filesystem::path operator/(const std::string& name) const { return path / name; }
};

/// Pixel (x, y) of a decoded image.
inline Color at(const typenet::data::Image& im, int x, int y) {
    const std::uint8_t* p = im.at(static_cast<std::size_t>(y), static_cast<std::size_t>(x));
    return {p[0], p[1], p[2]};
}

/// Number of pixels of `im` inside `r` for which `pred` holds.
inline int count_if(const typenet::data::Image& im, Rect r, const std::function<bool(Color)>& pred) {
    int n = 0;
    for (int y = std::max(r.y, 0); y < std::min(r.bottom(), static_cast<int>(im.height)); ++y)
        for (int x = std::max(r.x, 0); x < std::min(r.right(), static_cast<int>(im.width)); ++x)
            if (pred(at(im, x, y))) ++n;
    return n;
}

/// Number of pixels of `im` OUTSIDE `r` for which `pred` holds.
inline int count_outside(const typenet::data::Image& im, Rect r, const std::function<bool(Color)>& pred) {
    const Rect all{0, 0, static_cast<int>(im.width), static_cast<int>(im.height)};
    return count_if(im, all, pred) - count_if(im, r, pred);
}

/// The smallest rectangle holding every pixel of `im` that differs from `bg` (empty if none).
inline Rect ink_box(const typenet::data::Image& im, Color bg) {
    int x0 = 1 << 30, y0 = 1 << 30, x1 = -1, y1 = -1;
    for (int y = 0; y < static_cast<int>(im.height); ++y)
        for (int x = 0; x < static_cast<int>(im.width); ++x)
            if (!(at(im, x, y) == bg)) {
                x0 = std::min(x0, x), y0 = std::min(y0, y);
                x1 = std::max(x1, x), y1 = std::max(y1, y);
            }
    return x1 < 0 ? Rect{} : Rect{x0, y0, x1 - x0 + 1, y1 - y0 + 1};
}

/// The whole file as a string.
inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

/// An element of a parsed XML document: name, attributes in order, children.
struct XmlElement {
    std::string name;
    std::vector<std::pair<std::string, std::string>> attributes;
    std::vector<XmlElement> children;
    std::string text;  // character data directly inside, entities left as written

    const std::string* attr(const std::string& key) const {
        for (const auto& [k, v] : attributes)
            if (k == key) return &v;
        return nullptr;
    }
    /// Every element named `n` below this one (depth first).
    void find_all(const std::string& n, std::vector<const XmlElement*>& out) const {
        for (const XmlElement& c : children) {
            if (c.name == n) out.push_back(&c);
            c.find_all(n, out);
        }
    }
};

/// A strict little parser for the XML subset the SVG writer emits: prolog (XML
/// declaration, DOCTYPE), elements with quoted attributes, character data, the five
/// predefined entities. Fails (returns false, with `error`) on unbalanced or
/// mismatched tags, unquoted or duplicate attributes, a bare '<' or '&' in text,
/// an unknown entity, content after the root, or a control character.
struct XmlParser {
    std::string s;
    std::size_t i = 0;
    std::string error;

    explicit XmlParser(std::string text) : s(std::move(text)) {}

    bool fail(const std::string& why) {
        if (error.empty()) error = why + " at byte " + std::to_string(i);
        return false;
    }
    void skip_space() {
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    }
    bool name(std::string& out) {
        const std::size_t b = i;
        while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '-' || s[i] == ':' || s[i] == '_'))
            ++i;
        out = s.substr(b, i - b);
        return !out.empty() || fail("name expected");
    }
    bool chars(const std::string& t) {
        for (std::size_t k = 0; k < t.size(); ++k) {
            const auto c = static_cast<unsigned char>(t[k]);
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return fail("control character");
            if (t[k] == '<') return fail("bare '<'");
            if (t[k] == '&') {
                const std::size_t semi = t.find(';', k);
                if (semi == std::string::npos) return fail("unterminated entity");
                const std::string ent = t.substr(k + 1, semi - k - 1);
                if (ent != "amp" && ent != "lt" && ent != "gt" && ent != "quot" && ent != "apos")
                    return fail("unknown entity &" + ent + ";");
            }
        }
        return true;
    }
    bool element(XmlElement& e) {
        if (i >= s.size() || s[i] != '<') return fail("'<' expected");
        ++i;
        if (!name(e.name)) return false;
        for (;;) {
            skip_space();
            if (i >= s.size()) return fail("unterminated start tag");
            if (s.compare(i, 2, "/>") == 0) {
                i += 2;
                return true;
            }
            if (s[i] == '>') {
                ++i;
                break;
            }
            std::string key;
            if (!name(key)) return false;
            if (e.attr(key)) return fail("duplicate attribute " + key);
            skip_space();
            if (i >= s.size() || s[i] != '=') return fail("'=' expected");
            ++i;
            skip_space();
            if (i >= s.size() || (s[i] != '"' && s[i] != '\'')) return fail("unquoted attribute " + key);
            const char q = s[i++];
            const std::size_t end = s.find(q, i);
            if (end == std::string::npos) return fail("unterminated attribute");
            const std::string value = s.substr(i, end - i);
            if (!chars(value)) return false;
            e.attributes.emplace_back(key, value);
            i = end + 1;
        }
        for (;;) {
            const std::size_t lt = s.find('<', i);
            if (lt == std::string::npos) return fail("unterminated element " + e.name);
            const std::string text = s.substr(i, lt - i);
            if (!chars(text)) return false;
            e.text += text;
            i = lt;
            if (s.compare(i, 2, "</") == 0) {
                i += 2;
                std::string closing;
                if (!name(closing)) return false;
                if (closing != e.name) return fail("</" + closing + "> closes <" + e.name + ">");
                skip_space();
                if (i >= s.size() || s[i] != '>') return fail("'>' expected");
                ++i;
                return true;
            }
            e.children.emplace_back();
            if (!element(e.children.back())) return false;
        }
    }
    /// Parse a whole document into `root`.
    bool document(XmlElement& root) {
        skip_space();
        if (s.compare(i, 5, "<?xml") == 0) {
            const std::size_t end = s.find("?>", i);
            if (end == std::string::npos) return fail("unterminated XML declaration");
            i = end + 2;
        }
        skip_space();
        if (s.compare(i, 9, "<!DOCTYPE") == 0) {
            const std::size_t end = s.find('>', i);
            if (end == std::string::npos) return fail("unterminated DOCTYPE");
            i = end + 1;
        }
        skip_space();
        if (!element(root)) return false;
        skip_space();
        return i == s.size() || fail("content after the root element");
    }
};

}  // namespace report_test
