// One picture of each kind from the real rock-paper-scissors images: the examples
// grid (workflow step 2), loss and accuracy plots (step 11), the predictions grid
// (step 13) and the confusion-matrix heatmap (step 15, the reference matrix).
// The training curves and predicted probabilities are made up (seeded), as no model
// runs here. The pictures go to a temporary folder, or to $TYPENET_REPORT_DEMO when
// set, to be looked at:
//
//   TYPENET_REPORT_DEMO=/tmp/report-demo build/tests/test_report_data
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "report/helpers.hpp"
#include "typenet/core/paths.hpp"
#include "typenet/core/random.hpp"
#include "typenet/data/image.hpp"
#include "typenet/data/resize.hpp"
#include "typenet/report/confusion.hpp"
#include "typenet/report/grid.hpp"
#include "typenet/report/plot.hpp"

using namespace typenet;
using namespace typenet::report;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> names{"rock", "paper", "scissors"};

fs::path rps(const std::string& split, const std::string& cls, const std::string& file) {
    return data_dir() / "data" / "rock_paper_scissors" / split / cls / file;
}

// The n-th file (sorted) of a class folder.
fs::path nth_file(const std::string& split, const std::string& cls, std::size_t n) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(rps(split, cls, ""))) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    REQUIRE(n < files.size());
    return files[n];
}

// An image as the workflow preprocesses it: [0, 1], 224 x 224, bilinear.
Tensor<3> preprocess(const fs::path& p) {
    Tensor<3> t = data::to_tensor(data::read_image(p));
    t /= 255.0f;
    return data::resize_bilinear(t, 224, 224);
}

void check_png(const fs::path& p, int w, int h) {
    const data::Image im = data::read_image(p);
    CHECK(im.width == static_cast<std::size_t>(w));
    CHECK(im.height == static_cast<std::size_t>(h));
}

}  // namespace

TEST_CASE("one picture of each kind from the real dataset") {
    std::unique_ptr<report_test::TempDir> tmp;
    fs::path out;
    if (const char* env = std::getenv("TYPENET_REPORT_DEMO"); env && *env) {
        out = env;
        fs::create_directories(out);
    } else {
        tmp = std::make_unique<report_test::TempDir>("demo");
        out = tmp->path;
    }

    // Step 2: examples with their label names.
    ImageGrid examples(6);
    examples.title("rock_paper_scissors: train examples");
    for (std::size_t i = 0; i < 12; ++i) {
        const std::size_t c = i % 3;
        examples.add(preprocess(nth_file("train", names[c], 37 * i)), {{names[c]}});
    }
    examples.save_png(out / "examples.png");
    check_png(out / "examples.png", examples.layout().width, examples.layout().height);

    // Step 11: per-batch loss (y 0..2) and accuracy (y 0..1) over 5 epochs of 30 batches.
    Rng rng(11);
    std::vector<double> loss, acc;
    for (int step = 0; step < 150; ++step) {
        const double level = 1.3 * std::exp(-step / 10.0) + 0.07;
        loss.push_back(std::max(0.005, level * (1.0 + 0.35 * rng.normal())));
        acc.push_back(std::clamp(std::round(64.0 * (1.0 - 0.6 * level + 0.04 * rng.normal())) / 64.0, 0.0, 1.0));
    }
    loss[1] = 2.4;  // beyond the fixed range: cut at the frame
    LinePlot lp;
    lp.title("Loss per training batch").x_label("training step").y_label("loss").y_range(0, 2);
    lp.add("loss", loss);
    lp.save_png(out / "loss.png");
    lp.save_svg(out / "loss.svg");
    check_png(out / "loss.png", 800, 500);
    LinePlot ap;
    ap.title("Accuracy per training batch").x_label("training step").y_label("accuracy").y_range(0, 1);
    ap.add("accuracy", acc);
    ap.save_png(out / "accuracy.png");
    ap.save_svg(out / "accuracy.svg");
    check_png(out / "accuracy.png", 800, 500);
    report_test::XmlParser parser(report_test::slurp(out / "accuracy.svg"));
    report_test::XmlElement root;
    CHECK_MESSAGE(parser.document(root), parser.error);

    // Step 13: the first 10 test images, actual and predicted labels, wrong ones in red.
    ImageGrid predictions(5);
    predictions.title("Predictions on the first 10 test images");
    for (std::size_t i = 0; i < 10; ++i) {
        const std::size_t actual = i % 3;
        const std::size_t predicted = i == 7 ? (actual + 1) % 3 : actual;
        char line[80];
        const double prob = 0.97 - 0.04 * static_cast<double>(i % 4);
        std::snprintf(line, sizeof line, "predicted: %s %.2f", names[predicted].c_str(), prob);
        const bool wrong = predicted != actual;
        predictions.add(preprocess(nth_file("test", names[actual], i)),
                        {{"actual: " + names[actual]}, {line, wrong ? colors::red : colors::text}},
                        wrong ? std::optional<Color>(colors::red) : std::nullopt);
    }
    predictions.save_png(out / "predictions.png");
    check_png(out / "predictions.png", predictions.layout().width, predictions.layout().height);

    // Step 15: the reference confusion matrix.
    ConfusionMatrix cm(3);
    const std::size_t ref[3][3] = {{142, 3, 0}, {1, 131, 1}, {0, 1, 121}};
    for (std::size_t a = 0; a < 3; ++a)
        for (std::size_t p = 0; p < 3; ++p)
            for (std::size_t k = 0; k < ref[a][p]; ++k) cm.add(a, p);
    cm.title("Confusion matrix, test set");
    cm.save_png(out / "confusion.png", names);
    check_png(out / "confusion.png", cm.heatmap_layout(names).width, cm.heatmap_layout(names).height);
    std::FILE* f = std::fopen((out / "confusion.txt").c_str(), "w");
    REQUIRE(f);
    std::fputs(cm.to_string(names).c_str(), f);
    std::fclose(f);
}
