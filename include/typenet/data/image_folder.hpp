/// @file data/image_folder.hpp
/// `ImageFolder`: a classification dataset stored as one sub-folder of images per class.
///
/// ```
/// flowers/daisy/001.jpg  flowers/daisy/002.png ...  flowers/tulip/x.jpeg ...
/// ImageFolder folder("flowers");                      // classes: daisy = 0, tulip = 1
/// auto [train, val, test] = folder.split(Fractions{0.8, 0.1, 0.1}, 42);
/// ```
///
/// - Classes are the sub-folders, sorted alphabetically, unless the options name them
///   (`{"rock", "paper", "scissors"}`: rock = 0, paper = 1, scissors = 2).
/// - Images are found by extension (png, jpg, jpeg, bmp, gif, in any case) in each
///   class folder and its sub-folders; other files are listed in `ignored()`, hidden
///   files and folders (".name") are skipped. Files are sorted by path, so the order
///   (and every seeded split) is the same on every machine.
/// - Labels come from the class folder, never from file names.
/// - Bad input throws a typed exception naming the path and the reason: a missing or
///   unreadable folder (io_error), a class folder without images (format_error), and,
///   when the files are checked, a corrupt, truncated, empty or non-image file or an
///   absurd size in a header (image_error). With `on_error = OnError::skip`, bad files
///   and empty classes are left out instead, with one warning line each and a count at
///   the end, before any dataset is built: no batch ever holds a partly read file.
/// - Checking: `Check::none` lists files only (fast; a bad file then throws when it is
///   decoded, naming it); `Check::header` reads every file and checks its structure
///   and header (`read_image_header`, no pixel decoding); `Check::decode` decodes every
///   image once. `Check::automatic` is `none` when raising and `header` when skipping.
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <string>
#include <system_error>
#include <vector>

#include "typenet/config.hpp"
#include "typenet/core/error.hpp"
#include "typenet/core/random.hpp"
#include "typenet/data/dataset.hpp"
#include "typenet/data/image.hpp"

namespace typenet::data {

/// What to do with a bad file or an empty class folder.
enum class OnError {
    raise,  ///< throw a typed exception naming the path and the reason
    skip,   ///< leave it out, with one warning line per file and a count at the end
};

/// How much of every file `ImageFolder` checks when it is built.
enum class Check {
    automatic,  ///< `none` with OnError::raise, `header` with OnError::skip
    none,       ///< list the files only
    header,     ///< read every file and check its structure and header (no decoding)
    decode,     ///< decode every image once
};

/// Options of `ImageFolder`.
struct ImageFolderOptions {
    /// Class names in label order; empty: the sub-folders, sorted alphabetically.
    std::vector<std::string> class_names;
    OnError on_error = OnError::raise;
    Check check = Check::automatic;
    /// Where warnings go (skipped files); nullptr: nowhere.
    std::ostream* log = &std::cerr;
};

/// Split sizes as fractions of the whole (they must add up to 1).
struct Fractions {
    double train = 0.8, validation = 0.1, test = 0.1;
};

/// Split sizes as numbers of examples (at most the whole; the rest is unused).
struct Counts {
    std::size_t train = 0, validation = 0, test = 0;
};

/// Three disjoint datasets.
struct Splits {
    Dataset train, validation, test;
};

/// True when `ext` (with its dot) is an image extension typenet reads, in any case.
inline bool is_image_extension(const std::string& ext) {
    std::string e;
    for (char c : ext) e += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return e == ".png" || e == ".jpg" || e == ".jpeg" || e == ".bmp" || e == ".gif";
}

/// One sub-folder of images per class (see the file description).
class ImageFolder {
public:
    /// Find the classes and the images under `root`.
    /// @throws io_error (missing or unreadable folder), format_error (no class folder,
    ///         a class without images), image_error (a bad file, when checked), each
    ///         naming the path; config_error for duplicate class names.
    explicit ImageFolder(std::filesystem::path root, ImageFolderOptions options = {})
        : root_(std::move(root)), options_(std::move(options)) {
        namespace fs = std::filesystem;
        require_folder(root_);
        classes_ = options_.class_names.empty() ? sub_folders(root_) : options_.class_names;
        if (classes_.empty())
            throw format_error(root_.string(), "no class folder in it (expected one sub-folder of images per class)");
        for (std::size_t i = 0; i < classes_.size(); ++i)
            for (std::size_t j = i + 1; j < classes_.size(); ++j)
                if (classes_[i] == classes_[j]) throw config_error("ImageFolder: class '" + classes_[i] + "' named twice");

        for (std::size_t c = 0; c < classes_.size(); ++c) {
            const fs::path dir = root_ / classes_[c];
            require_folder(dir);
            std::vector<fs::path> found = image_files(dir);
            if (found.empty()) {
                const std::string why = "no image files (.png .jpg .jpeg .bmp .gif) in class folder '" + classes_[c] + "'";
                if (options_.on_error == OnError::raise) throw format_error(dir.string(), why);
                warn(dir.string() + ": " + why + "; the class keeps label " + std::to_string(c) + " but has no example");
            }
            for (auto& f : found) {
                files_.push_back(std::move(f));
                labels_.push_back(static_cast<std::int32_t>(c));
            }
        }
        check_files();
    }

    /// The folder.
    const std::filesystem::path& root() const noexcept { return root_; }
    /// Class names; the label of a class is its position.
    const std::vector<std::string>& class_names() const noexcept { return classes_; }
    /// Number of images.
    std::size_t size() const noexcept { return files_.size(); }
    /// The image files, grouped by class, sorted within each class.
    const std::vector<std::filesystem::path>& files() const noexcept { return files_; }
    /// The label of each file.
    const std::vector<std::int32_t>& labels() const noexcept { return labels_; }
    /// Files left out as bad (OnError::skip).
    const std::vector<std::filesystem::path>& skipped() const noexcept { return skipped_; }
    /// Files in class folders that are not images by their extension.
    const std::vector<std::filesystem::path>& ignored() const noexcept { return ignored_; }
    /// Number of images per class.
    std::vector<std::size_t> class_counts() const {
        std::vector<std::size_t> n(classes_.size(), 0);
        for (auto l : labels_) ++n[static_cast<std::size_t>(l)];
        return n;
    }

    /// Every image, in file order (decoded lazily: values 0..255, HWC float).
    Dataset dataset() const { return Dataset::from_files(files_, labels_); }

    /// A seeded random split by fractions (validation and test sizes rounded to the
    /// nearest integer, train takes the rest). @throws config_error for negative
    /// fractions or fractions not adding up to 1.
    Splits split(const Fractions& f, std::uint64_t seed = TYPENET_DEFAULT_SEED) const {
        if (f.train < 0 || f.validation < 0 || f.test < 0 || std::abs(f.train + f.validation + f.test - 1.0) > 1e-6)
            throw config_error("ImageFolder::split: fractions must be >= 0 and add up to 1, got " +
                               std::to_string(f.train) + " + " + std::to_string(f.validation) + " + " +
                               std::to_string(f.test));
        const auto n = static_cast<double>(size());
        const auto v = static_cast<std::size_t>(std::llround(f.validation * n));
        const auto t = std::min(static_cast<std::size_t>(std::llround(f.test * n)), size() - v);
        return split(Counts{size() - v - t, v, t}, seed);
    }

    /// A seeded random split by counts: a permutation of the files drawn from `seed`,
    /// cut into train, validation, test (in that order). @throws config_error when the
    /// counts add up to more than `size()`.
    Splits split(const Counts& c, std::uint64_t seed = TYPENET_DEFAULT_SEED) const {
        if (c.train + c.validation + c.test > size())
            throw config_error("ImageFolder::split: " + std::to_string(c.train) + " + " + std::to_string(c.validation) +
                               " + " + std::to_string(c.test) + " examples asked, the folder has " +
                               std::to_string(size()));
        std::vector<std::size_t> order(size());
        std::iota(order.begin(), order.end(), std::size_t{0});
        Rng rng(seed);
        rng.shuffle(order.begin(), order.end());
        auto part = [&](std::size_t from, std::size_t count) {
            std::vector<std::filesystem::path> f;
            std::vector<std::int32_t> l;
            for (std::size_t i = from; i < from + count; ++i) {
                f.push_back(files_[order[i]]);
                l.push_back(labels_[order[i]]);
            }
            return Dataset::from_files(std::move(f), std::move(l));
        };
        return Splits{part(0, c.train), part(c.train, c.validation), part(c.train + c.validation, c.test)};
    }

private:
    static void require_folder(const std::filesystem::path& p) {
        std::error_code ec;
        const auto st = std::filesystem::status(p, ec);
        if (!std::filesystem::exists(st)) throw io_error(p.string(), "no such folder");
        if (!std::filesystem::is_directory(st)) throw io_error(p.string(), "not a folder");
    }

    static std::vector<std::string> sub_folders(const std::filesystem::path& root) {
        std::vector<std::string> out;
        std::error_code ec;
        std::filesystem::directory_iterator it(root, ec), end;
        if (ec) throw io_error(root.string(), "cannot list the folder: " + ec.message());
        for (; it != end; it.increment(ec)) {
            const std::string name = it->path().filename().string();
            if (!name.empty() && name[0] != '.' && it->is_directory(ec)) out.push_back(name);
        }
        if (ec) throw io_error(root.string(), "cannot list the folder: " + ec.message());
        std::sort(out.begin(), out.end());
        return out;
    }

    std::vector<std::filesystem::path> image_files(const std::filesystem::path& dir) {
        namespace fs = std::filesystem;
        std::vector<fs::path> out;
        std::error_code ec;
        fs::recursive_directory_iterator it(dir, ec), end;
        if (ec) throw io_error(dir.string(), "cannot list the folder: " + ec.message());
        for (; it != end; it.increment(ec)) {
            if (ec) break;
            const std::string name = it->path().filename().string();
            if (!name.empty() && name[0] == '.') {  // hidden file or folder
                if (it->is_directory(ec)) it.disable_recursion_pending();
                continue;
            }
            if (it->is_directory(ec)) continue;
            if (is_image_extension(it->path().extension().string()))
                out.push_back(it->path());
            else
                ignored_.push_back(it->path());
        }
        if (ec) throw io_error(dir.string(), "cannot list the folder: " + ec.message());
        std::sort(out.begin(), out.end());
        return out;
    }

    void warn(const std::string& line) const {
        if (options_.log) *options_.log << "typenet: warning: " << line << '\n';
    }

    void check_files() {
        Check how = options_.check;
        if (how == Check::automatic) how = options_.on_error == OnError::skip ? Check::header : Check::none;
        if (how == Check::none) return;
        std::vector<std::string> why(files_.size());
        std::vector<std::exception_ptr> err(files_.size());
        const auto n = static_cast<std::ptrdiff_t>(files_.size());
        TYPENET_OMP(parallel for schedule(dynamic, 8))
        for (std::ptrdiff_t si = 0; si < n; ++si) {
            const auto i = static_cast<std::size_t>(si);
            try {
                if (how == Check::header)
                    (void)read_image_header(files_[i]);
                else
                    (void)read_image(files_[i]);
            } catch (const io_error& e) {
                why[i] = e.reason();
                err[i] = std::current_exception();
            } catch (const std::exception& e) {
                why[i] = e.what();
                err[i] = std::current_exception();
            }
        }
        std::vector<std::filesystem::path> keep_files;
        std::vector<std::int32_t> keep_labels;
        for (std::size_t i = 0; i < files_.size(); ++i) {
            if (!err[i]) {
                keep_files.push_back(std::move(files_[i]));
                keep_labels.push_back(labels_[i]);
                continue;
            }
            if (options_.on_error == OnError::raise) std::rethrow_exception(err[i]);
            warn("skipping " + files_[i].string() + ": " + why[i]);
            skipped_.push_back(std::move(files_[i]));
        }
        if (!skipped_.empty())
            warn("skipped " + std::to_string(skipped_.size()) + " of " + std::to_string(files_.size()) + " files in " +
                 root_.string());
        files_ = std::move(keep_files);
        labels_ = std::move(keep_labels);
    }

    std::filesystem::path root_;
    ImageFolderOptions options_;
    std::vector<std::string> classes_;
    std::vector<std::filesystem::path> files_;
    std::vector<std::int32_t> labels_;
    std::vector<std::filesystem::path> skipped_, ignored_;
};

}  // namespace typenet::data
