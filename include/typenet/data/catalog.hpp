/// @file data/catalog.hpp
/// Named datasets with their description, as `tfds.load(name, with_info=True)`.
///
/// ```
/// auto rps = typenet::data::load("rock_paper_scissors");
/// std::cout << rps.info;                      // name, version, description, features, splits, citation
/// Dataset train = rps["train"], test = rps["test"];
/// ```
///
/// The catalogue holds one dataset so far:
///
/// | name                  | splits                    | classes                             |
/// |-----------------------|---------------------------|-------------------------------------|
/// | `rock_paper_scissors` | train 2,520, test 372     | rock = 0, paper = 1, scissors = 2   |
///
/// `load` looks, in `LoadOptions::dir` when set, else in `$TYPENET_DATA/data` (see
/// `typenet::data_dir()`), for either layout:
///
/// - `rock_paper_scissors/{train,test}/{rock,paper,scissors}/` (the shared copy), or
///   `{train,test}/{rock,paper,scissors}/` directly in the folder named;
/// - the public zips unpacked: `rps/{rock,paper,scissors}/` (train) and
///   `rps-test-set/{rock,paper,scissors}/` (test), as `scripts/download_data.sh` leaves them.
///
/// When none is there and `LoadOptions::download` is set, the public zips are downloaded
/// into that folder first (as `tfds.load` does; off by default: a library call reaches
/// the network only when asked); otherwise io_error names the folder, lists where it
/// looked and says how to download them. Labels come from the folders, never from file
/// names.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <filesystem>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "typenet/core/error.hpp"
#include "typenet/core/paths.hpp"
#include "typenet/data/dataset.hpp"
#include "typenet/data/image_folder.hpp"
#include "typenet/io/download.hpp"

namespace typenet::data {

/// Size of one split.
struct SplitInfo {
    std::string name;
    std::size_t num_examples = 0;
};

/// What a catalogued dataset is: printed like TensorFlow Datasets prints its info.
struct DatasetInfo {
    std::string name, version, description, homepage, citation, license;
    std::array<std::size_t, 3> image_shape{};  ///< (height, width, channels) of the stored images
    std::string image_dtype = "uint8";         ///< as stored; decoded examples are float32 0..255
    std::vector<std::string> label_names;      ///< label i is label_names[i]
    std::vector<SplitInfo> splits;
    std::filesystem::path data_path;  ///< where the files were found

    /// The number of examples of split `name` (0 if there is no such split).
    std::size_t split_size(const std::string& split) const {
        for (const auto& s : splits)
            if (s.name == split) return s.num_examples;
        return 0;
    }
    /// Total number of examples over all splits.
    std::size_t total_examples() const {
        std::size_t n = 0;
        for (const auto& s : splits) n += s.num_examples;
        return n;
    }
};

/// Print `info` in the layout of `tfds.core.DatasetInfo`.
inline std::ostream& operator<<(std::ostream& os, const DatasetInfo& info) {
    auto indent = [](const std::string& text, const std::string& pad) {
        std::string out = pad;
        for (char c : text) {
            out += c;
            if (c == '\n') out += pad;
        }
        return out;
    };
    os << "typenet.data.DatasetInfo(\n";
    os << "    name='" << info.name << "',\n";
    os << "    full_name='" << info.name << "/" << info.version << "',\n";
    os << "    description=\"\"\"\n" << indent(info.description, "    ") << "\n    \"\"\",\n";
    os << "    homepage='" << info.homepage << "',\n";
    os << "    data_path='" << info.data_path.string() << "',\n";
    os << "    features=FeaturesDict({\n";
    os << "        'image': Image(shape=(" << info.image_shape[0] << ", " << info.image_shape[1] << ", "
       << info.image_shape[2] << "), dtype=" << info.image_dtype << "),\n";
    os << "        'label': ClassLabel(shape=(), dtype=int64, num_classes=" << info.label_names.size() << "),\n";
    os << "    }),\n";
    os << "    supervised_keys=('image', 'label'),\n";
    os << "    label_names=[";
    for (std::size_t i = 0; i < info.label_names.size(); ++i) os << (i ? ", " : "") << "'" << info.label_names[i] << "'";
    os << "],\n";
    os << "    splits={\n";
    std::vector<SplitInfo> sorted = info.splits;
    std::sort(sorted.begin(), sorted.end(), [](const SplitInfo& a, const SplitInfo& b) { return a.name < b.name; });
    for (const auto& s : sorted) os << "        '" << s.name << "': <SplitInfo num_examples=" << s.num_examples << ">,\n";
    os << "    },\n";
    os << "    citation=\"\"\"" << indent(info.citation, "    ").substr(4) << "\"\"\",\n";
    os << "    license='" << info.license << "',\n";
    os << ")\n";
    return os;
}

/// Options of `load`.
struct LoadOptions {
    /// Folder to look in; empty: `typenet::data_dir() / "data"`.
    std::filesystem::path dir;
    OnError on_error = OnError::raise;
    Check check = Check::automatic;
    std::ostream* log = &std::cerr;
    /// When the dataset is not found: download the public originals into the folder
    /// above (created if needed), unpack them there (`rps/`, `rps-test-set/`), then load.
    /// Each zip is fetched to a temporary name, its CRCs checked, unpacked into a
    /// temporary folder and renamed into place: an interrupted download leaves nothing
    /// that looks like data. Needs `curl`; progress goes to `log`.
    bool download = false;
    /// Where the zips `rps.zip` and `rps-test-set.zip` are fetched from: `$TYPENET_RPS_URL`
    /// (a mirror), else the author's public location.
    std::string download_url = env_or("TYPENET_RPS_URL", "https://storage.googleapis.com/download.tensorflow.org/data");
};

/// A loaded dataset: its splits and its description.
struct LoadedDataset {
    DatasetInfo info;
    std::map<std::string, Dataset> splits;

    /// Split `name`. @throws config_error naming the splits there are.
    const Dataset& operator[](const std::string& name) const {
        auto it = splits.find(name);
        if (it == splits.end()) {
            std::string known;
            for (const auto& [k, v] : splits) known += (known.empty() ? "" : ", ") + k;
            throw config_error("dataset " + info.name + " has no split '" + name + "' (it has " + known + ")");
        }
        return it->second;
    }
};

/// Names of the datasets `load` knows.
inline std::vector<std::string> available_datasets() { return {"rock_paper_scissors"}; }

namespace detail {

inline DatasetInfo rock_paper_scissors_info() {
    DatasetInfo info;
    info.name = "rock_paper_scissors";
    info.version = "3.0.0";
    info.description = "Images of hands playing rock, paper, scissor game.";
    info.homepage = "http://laurencemoroney.com/rock-paper-scissors-dataset";
    info.citation =
        "@ONLINE {rps,\n"
        "author = \"Laurence Moroney\",\n"
        "title = \"Rock, Paper, Scissors Dataset\",\n"
        "month = \"feb\",\n"
        "year = \"2019\",\n"
        "url = \"http://laurencemoroney.com/rock-paper-scissors-dataset\"\n"
        "}";
    info.license = "CC BY 2.0";
    info.image_shape = {300, 300, 3};
    info.label_names = {"rock", "paper", "scissors"};
    return info;
}

inline bool has_classes(const std::filesystem::path& dir, const std::vector<std::string>& classes) {
    std::error_code ec;
    for (const auto& c : classes)
        if (!std::filesystem::is_directory(dir / c, ec)) return false;
    return true;
}

/// Download the public zips of rock-paper-scissors into `base` and unpack them to
/// `base/rps/` and `base/rps-test-set/` (a split already there is kept).
inline void download_rock_paper_scissors(const std::filesystem::path& base, const std::vector<std::string>& classes,
                                         const LoadOptions& options) {
    namespace fs = std::filesystem;
    io::DownloadOptions dl;
    dl.log = options.log;
    std::error_code ec;
    for (const char* folder : {"rps", "rps-test-set"}) {
        if (has_classes(base / folder, classes)) continue;
        const fs::path zip = base / (std::string(folder) + ".zip");
        io::download_file(options.download_url + "/" + folder + ".zip", zip, dl);
        const fs::path tmp = base / (".unpack." + std::string(folder) + "." + std::to_string(::getpid()));
        fs::remove_all(tmp, ec);
        if (options.log) *options.log << "typenet: unpacking " << zip.string() << "\n" << std::flush;
        try {
            io::extract_zip(zip, tmp);
            if (!has_classes(tmp / folder, classes))
                throw format_error(zip.string(), std::string("does not hold ") + folder + "/{rock,paper,scissors}/");
        } catch (...) {
            fs::remove_all(tmp, ec);
            fs::remove(zip, ec);
            throw;
        }
        fs::remove_all(base / folder, ec);
        fs::rename(tmp / folder, base / folder, ec);
        if (ec) throw io_error((base / folder).string(), "cannot move the unpacked files into place: " + ec.message());
        fs::remove_all(tmp, ec);
        fs::remove(zip, ec);
    }
}

}  // namespace detail

/// Load a catalogued dataset by name (see the file description for where it looks).
/// @throws config_error for an unknown name; io_error when the files are not found
///         (naming where it looked and how to download them); with `download`, the
///         io_error of a failed download (naming the URL and curl's reason) or the
///         format_error of an archive that is damaged or not the dataset's; the errors of
///         `ImageFolder` for bad files.
inline LoadedDataset load(const std::string& name, const LoadOptions& options = {}) {
    namespace fs = std::filesystem;
    if (name != "rock_paper_scissors") {
        std::string known;
        for (const auto& k : available_datasets()) known += (known.empty() ? "" : ", ") + k;
        throw config_error("load: unknown dataset '" + name + "' (known: " + known + ")");
    }
    LoadedDataset out;
    out.info = detail::rock_paper_scissors_info();
    const std::vector<std::string>& classes = out.info.label_names;
    const fs::path base = options.dir.empty() ? typenet::data_dir() / "data" : options.dir;

    // Candidate (train, test, dataset folder) layouts, in order of preference.
    const std::vector<std::array<fs::path, 3>> layouts = {
        {base / name / "train", base / name / "test", base / name},
        {base / "train", base / "test", base},
        {base / "rps", base / "rps-test-set", base},
    };
    const auto found = [&] {
        for (const auto& [train, test, root] : layouts)
            if (detail::has_classes(train, classes) && detail::has_classes(test, classes)) return true;
        return false;
    };
    if (!found() && options.download) detail::download_rock_paper_scissors(base, classes, options);
    for (const auto& [train, test, root] : layouts) {
        if (!detail::has_classes(train, classes) || !detail::has_classes(test, classes)) continue;
        ImageFolderOptions fo;
        fo.class_names = classes;
        fo.on_error = options.on_error;
        fo.check = options.check;
        fo.log = options.log;
        const ImageFolder tr(train, fo), te(test, fo);
        out.splits["train"] = tr.dataset();
        out.splits["test"] = te.dataset();
        out.info.splits = {{"train", tr.size()}, {"test", te.size()}};
        out.info.data_path = root;
        return out;
    }
    throw io_error(base.string(), "dataset rock_paper_scissors not found: looked for " + (base / name).string() +
                                      "/{train,test}/{rock,paper,scissors}, " + base.string() +
                                      "/{train,test}/{rock,paper,scissors} and " + base.string() +
                                      "/{rps,rps-test-set}/{rock,paper,scissors}; download it with LoadOptions::download, "
                                      "or scripts/download_data.sh " +
                                      base.string() + " (or set TYPENET_DATA)");
}

}  // namespace typenet::data
