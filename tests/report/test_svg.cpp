// Tests of report/svg.hpp: XML escaping, and a document built with the canvas calls
// is well formed and says what was drawn.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "report/helpers.hpp"
#include "typenet/report/svg.hpp"

using namespace typenet;
using namespace typenet::report;
using report_test::XmlElement;
using report_test::XmlParser;

TEST_CASE("xml_escape writes the five special characters as entities and drops what XML forbids") {
    CHECK(xml_escape("a<b & \"c\" 'd' >") == "a&lt;b &amp; &quot;c&quot; &apos;d&apos; &gt;");
    CHECK(xml_escape("caf\xC3\xA9 \xE2\x82\xAC") == "caf\xC3\xA9 \xE2\x82\xAC");  // valid UTF-8 kept
    CHECK(xml_escape("a\x01" "b\x1F" "c\td") == "a?b?c\td");
    CHECK(xml_escape("\xFF" "x\xC3") == "?x?");
    CHECK(xml_escape("\xEF\xBF\xBE") == "?");  // U+FFFE is not an XML character
}

TEST_CASE("an SvgDocument is a well-formed SVG 1.1 document with what was drawn") {
    SvgDocument d(200, 100, Color{250, 250, 250});
    d.fill_rect({10, 10, 30, 20}, Color{255, 0, 0});
    d.draw_rect({0, 0, 200, 100}, colors::black, 2);
    d.set_clip({5, 5, 100, 50});
    const Point pts[3] = {{0, 0}, {10.126, 20.5}, {30, 40}};
    d.draw_polyline(pts, Stroke{colors::blue, 2.0, true, 0, 0, LineCap::round});
    d.clear_clip();
    d.draw_line({1, 2}, {3, 4}, Stroke{colors::black, 1.0, false, 4.0, 2.0});
    d.draw_text(50, 60, "x < y & z", colors::black, 2, HAlign::center, VAlign::top);
    d.draw_text_vertical(20, 50, "up", colors::black, 1);

    XmlParser p(d.str());
    XmlElement root;
    REQUIRE_MESSAGE(p.document(root), p.error);
    CHECK(root.name == "svg");
    REQUIRE(root.attr("version"));
    CHECK(*root.attr("version") == "1.1");
    CHECK(*root.attr("xmlns") == "http://www.w3.org/2000/svg");
    CHECK(*root.attr("width") == "200");
    CHECK(*root.attr("viewBox") == "0 0 200 100");
    CHECK(p.s.find("<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\"") != std::string::npos);

    std::vector<const XmlElement*> polys, texts, clips, groups;
    root.find_all("polyline", polys);
    root.find_all("text", texts);
    root.find_all("clipPath", clips);
    root.find_all("g", groups);
    REQUIRE(polys.size() == 2);
    CHECK(*polys[0]->attr("points") == "0,0 10.13,20.5 30,40");
    CHECK(*polys[0]->attr("stroke") == "#1f77b4");
    CHECK(*polys[0]->attr("stroke-linecap") == "round");
    CHECK(*polys[1]->attr("stroke-dasharray") == "4,2");
    REQUIRE(clips.size() == 1);
    REQUIRE(groups.size() == 1);
    CHECK(*groups[0]->attr("clip-path") == "url(#" + *clips[0]->attr("id") + ")");
    CHECK(groups[0]->children.size() == 1);  // the clipped polyline only
    REQUIRE(texts.size() == 2);
    CHECK(texts[0]->text == "x &lt; y &amp; z");
    // Same box as on a canvas: centred on x = 50, baseline at the top + 7 * scale.
    CHECK(*texts[0]->attr("text-anchor") == "middle");
    CHECK(*texts[0]->attr("x") == "50");
    CHECK(*texts[0]->attr("y") == "74");
    CHECK(*texts[0]->attr("font-size") == "20");
    REQUIRE(texts[1]->attr("transform"));
    CHECK(texts[1]->attr("transform")->starts_with("rotate(-90 "));
    CHECK_THROWS_AS(SvgDocument(0, 10), config_error);
}

TEST_CASE("SvgDocument::save writes the document; a bad path is an io_error naming it") {
    report_test::TempDir dir("svg");
    SvgDocument d(10, 10);
    d.save(dir / "a.svg");
    CHECK(report_test::slurp(dir / "a.svg") == d.str());
    const auto bad = dir.path / "nope" / "a.svg";
    try {
        d.save(bad);
        FAIL("no exception");
    } catch (const io_error& e) {
        CHECK(e.path() == bad.string());
    }
}
