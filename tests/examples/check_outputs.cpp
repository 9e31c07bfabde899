// check_outputs DIR MIN_ACCURACY: validates what examples/rock_paper_scissors wrote.
// Every PNG decodes (typenet's decoder: structure and CRCs checked), every SVG is a
// well-formed XML document with an <svg> root, history.csv has a header and one row
// per epoch, metrics.json is valid JSON whose test_accuracy is at least MIN_ACCURACY.
// Prints one line per file; exit status 1 on the first problem.
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "typenet/data/image.hpp"

namespace {
std::string slurp(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) throw std::runtime_error(p.string() + ": cannot open");
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// A strict JSON validator (RFC 8259 grammar), recursive descent.
struct Json {
    const std::string& s;
    std::size_t i = 0;
    void ws() {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
    }
    bool lit(const char* w) {
        const std::size_t n = std::char_traits<char>::length(w);
        if (s.compare(i, n, w) != 0) return false;
        i += n;
        return true;
    }
    bool string() {
        if (i >= s.size() || s[i] != '"') return false;
        for (++i; i < s.size(); ++i) {
            if (s[i] == '\\') {
                ++i;
                continue;
            }
            if (static_cast<unsigned char>(s[i]) < 0x20) return false;
            if (s[i] == '"') {
                ++i;
                return true;
            }
        }
        return false;
    }
    bool number() {
        const std::size_t start = i;
        if (i < s.size() && s[i] == '-') ++i;
        while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.' || s[i] == 'e' ||
                                s[i] == 'E' || s[i] == '+' || s[i] == '-'))
            ++i;
        if (i == start) return false;
        char* end = nullptr;
        const std::string t = s.substr(start, i - start);
        std::strtod(t.c_str(), &end);
        return *end == '\0' && t != "-";
    }
    bool value() {
        ws();
        if (i >= s.size()) return false;
        bool ok;
        if (s[i] == '{') {
            ++i;
            ws();
            if (i < s.size() && s[i] == '}') {
                ++i;
                return true;
            }
            for (;;) {
                ws();
                if (!string()) return false;
                ws();
                if (i >= s.size() || s[i++] != ':') return false;
                if (!value()) return false;
                ws();
                if (i < s.size() && s[i] == ',') {
                    ++i;
                    continue;
                }
                if (i < s.size() && s[i] == '}') {
                    ++i;
                    return true;
                }
                return false;
            }
        } else if (s[i] == '[') {
            ++i;
            ws();
            if (i < s.size() && s[i] == ']') {
                ++i;
                return true;
            }
            for (;;) {
                if (!value()) return false;
                ws();
                if (i < s.size() && s[i] == ',') {
                    ++i;
                    continue;
                }
                if (i < s.size() && s[i] == ']') {
                    ++i;
                    return true;
                }
                return false;
            }
        } else if (s[i] == '"') {
            ok = string();
        } else if (lit("true") || lit("false") || lit("null")) {
            ok = true;
        } else {
            ok = number();
        }
        return ok;
    }
    bool document() {
        if (!value()) return false;
        ws();
        return i == s.size();
    }
};

// Well-formed XML (tags balanced and nested, attributes quoted, an <svg> root).
bool well_formed_svg(const std::string& s, std::string& why) {
    std::vector<std::string> stack;
    bool root = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '<') continue;
        if (s.compare(i, 4, "<!--") == 0) {
            i = s.find("-->", i);
            if (i == std::string::npos) return why = "unterminated comment", false;
            continue;
        }
        if (s.compare(i, 2, "<?") == 0 || s.compare(i, 2, "<!") == 0) {
            i = s.find('>', i);
            continue;
        }
        const std::size_t end = s.find('>', i);
        if (end == std::string::npos) return why = "unterminated tag", false;
        std::string tag = s.substr(i + 1, end - i - 1);
        if (tag.empty()) return why = "empty tag", false;
        if (tag[0] == '/') {
            const std::string name = tag.substr(1);
            if (stack.empty() || stack.back() != name) return why = "mismatched </" + name + ">", false;
            stack.pop_back();
        } else {
            const bool self = tag.back() == '/';
            const std::string name = tag.substr(0, tag.find_first_of(" \t\n/"));
            std::size_t quotes = 0;
            for (char c : tag) quotes += c == '"';
            if (quotes % 2) return why = "unbalanced quotes in <" + name + ">", false;
            if (stack.empty()) {
                if (root) return why = "two root elements", false;
                if (name != "svg") return why = "root is <" + name + ">, not <svg>", false;
                root = true;
            }
            if (!self) stack.push_back(name);
        }
        i = end;
    }
    if (!stack.empty()) return why = "<" + stack.back() + "> is never closed", false;
    if (!root) return why = "no <svg> element", false;
    return true;
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: check_outputs DIR MIN_ACCURACY\n");
        return 2;
    }
    const std::filesystem::path dir = argv[1];
    const double min_acc = std::atof(argv[2]);
    try {
        for (const char* png : {"examples.png", "loss.png", "accuracy.png", "confusion_matrix.png", "predictions.png"}) {
            const auto im = typenet::data::read_image(dir / png);
            if (im.width < 100 || im.height < 100) throw std::runtime_error(std::string(png) + ": suspiciously small");
            std::printf("ok: %s is a %zux%zu PNG\n", png, im.width, im.height);
        }
        for (const char* svg : {"loss.svg", "accuracy.svg"}) {
            std::string why;
            if (!well_formed_svg(slurp(dir / svg), why)) throw std::runtime_error(std::string(svg) + ": " + why);
            std::printf("ok: %s is a well-formed SVG document\n", svg);
        }
        {
            std::istringstream csv(slurp(dir / "history.csv"));
            std::string header, line;
            std::getline(csv, header);
            if (header.rfind("epoch,loss,accuracy,val_loss,val_accuracy", 0) != 0)
                throw std::runtime_error("history.csv: header is \"" + header + "\"");
            std::size_t rows = 0;
            while (std::getline(csv, line))
                if (!line.empty()) {
                    std::size_t commas = 0;
                    for (char c : line) commas += c == ',';
                    if (commas != 4) throw std::runtime_error("history.csv: row \"" + line + "\" has not 5 fields");
                    ++rows;
                }
            if (rows == 0) throw std::runtime_error("history.csv: no rows");
            std::printf("ok: history.csv has %zu epoch rows\n", rows);
        }
        {
            const std::string text = slurp(dir / "metrics.json");
            Json j{text};
            if (!j.document()) throw std::runtime_error("metrics.json: not valid JSON (near byte " + std::to_string(j.i) + ")");
            const std::size_t k = text.find("\"test_accuracy\":");
            if (k == std::string::npos) throw std::runtime_error("metrics.json: no test_accuracy");
            const double acc = std::atof(text.c_str() + k + 16);
            for (const char* key : {"\"test_loss\"", "\"confusion_matrix\"", "\"per_class\"", "\"seconds\"", "\"original_splits\""})
                if (text.find(key) == std::string::npos) throw std::runtime_error(std::string("metrics.json: no ") + key);
            std::printf("ok: metrics.json is valid JSON; test_accuracy %.4f (required >= %.4f)\n", acc, min_acc);
            if (!(acc >= min_acc)) throw std::runtime_error("test accuracy below the required minimum");
        }
        for (const char* f : {"dataset_info.txt", "summary.txt", "model.tnet"})
            if (!std::filesystem::is_regular_file(dir / f) || std::filesystem::file_size(dir / f) == 0)
                throw std::runtime_error(std::string(f) + ": missing or empty");
        std::printf("ok: dataset_info.txt, summary.txt, model.tnet present\n");
    } catch (const std::exception& e) {
        std::printf("FAIL: %s\n", e.what());
        return 1;
    }
    return 0;
}
