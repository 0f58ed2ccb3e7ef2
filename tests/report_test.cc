// The HTML report (src/report): escaping, the summary table, gnuplot's SVG
// inline in one well-formed page, and clear errors when gnuplot is missing or
// fails. Tests that draw plots skip when gnuplot is not installed.
#include <gtest/gtest.h>

#include <cstdlib>

#include "eval/metrics.h"
#include "report/gnuplot.h"
#include "report/html_report.h"
#include "report/summary_table.h"
#include "test_util.h"

namespace tracelm {
namespace {

#define REQUIRE_GNUPLOT()                                                                  \
  do {                                                                                     \
    if (!gnuplot_available())                                                              \
      GTEST_SKIP() << "gnuplot not installed (scripts/setup installs gnuplot-nox); plots " \
                      "not tested";                                                        \
  } while (0)

// Sets (or, with nullptr, unsets) $TRACELM_GNUPLOT; restores it at destruction.
class ScopedGnuplotEnv {
 public:
  explicit ScopedGnuplotEnv(const char* value) {
    const char* was = std::getenv("TRACELM_GNUPLOT");
    had_ = was != nullptr;
    if (was) saved_ = was;
    if (value)
      ::setenv("TRACELM_GNUPLOT", value, 1);
    else
      ::unsetenv("TRACELM_GNUPLOT");
  }
  ~ScopedGnuplotEnv() {
    if (had_)
      ::setenv("TRACELM_GNUPLOT", saved_.c_str(), 1);
    else
      ::unsetenv("TRACELM_GNUPLOT");
  }

 private:
  bool had_ = false;
  std::string saved_;
};

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + what.size())) ++n;
  return n;
}

Edge edge(const char* id, std::string caller, std::string callee, CallType t, int64_t s,
          int64_t f) {
  return Edge{*RpcId::parse(id), std::move(caller), std::move(callee), t, s, f};
}

// A root call USER -> root, then `children` calls root -> child (one of them
// to a microservice whose name needs escaping), response times growing with i.
CallGraph graph(int i, int children, const std::string& odd = "MS_<b>&\"x\"") {
  CallGraph g;
  g.service = "S_" + std::to_string(i % 3);
  g.trace_id = "T_" + std::to_string(i);
  int64_t end = 10 + 10 * i;
  g.edges.push_back(edge("0", "USER", "MS_root", CallType::kHttp, 0, end));
  for (int c = 1; c <= children; ++c) {
    std::string id = "0." + std::to_string(c);
    g.edges.push_back(edge(id.c_str(), "MS_root", c == 1 ? odd : "MS_" + std::to_string(c),
                           CallType::kRpc, 1, 1 + c * (1 + i % 4)));
  }
  return g;
}

struct Fixture {
  GraphSetProfile real;
  std::vector<RealismReport> reports;
  ReportContext ctx;
};

Fixture fixture() {
  Fixture f;
  for (int i = 0; i < 20; ++i) f.real.add(graph(i, 1 + i % 4));
  std::vector<CallGraph> a, b;
  for (int i = 0; i < 15; ++i) a.push_back(graph(i + 3, 1 + i % 3));
  for (int i = 0; i < 10; ++i) b.push_back(graph(i * 7, 1 + i % 5, "MS_other"));
  f.reports.push_back(RealismReport::compute("set<a>&'b'", f.real, a));
  f.reports.push_back(RealismReport::compute("baseline", f.real, b));
  f.ctx.real_path = "val<1>.jsonl";
  f.ctx.real = StructureSummary::of(f.real);
  f.ctx.synthetic_paths = {"a.jsonl", "b&c.jsonl"};
  return f;
}

TEST(Report, HtmlEscapeEscapesMarkup) {
  EXPECT_EQ(html_escape("a<b>&\"c\"'d'"), "a&lt;b&gt;&amp;&quot;c&quot;&#39;d&#39;");
  EXPECT_EQ(html_escape("plain MS_1"), "plain MS_1");
}

TEST(Report, GnuplotQuoteDoublesQuotesAndDropsNewlines) {
  EXPECT_EQ(gnuplot_quote("it's\na"), "'it''s a'");
}

TEST(Report, InlineSvgPrefixesIdsAndReferences) {
  std::string svg =
      "<svg><defs><path id='gpPt0'/><g id=\"c\"/></defs><use xlink:href='#gpPt0'/>"
      "<rect fill=\"url(#c)\" grid=\"x\"/><a href=\"http://x\"/></svg>";
  EXPECT_EQ(inline_svg(svg, "p1-"),
            "<svg><defs><path id='p1-gpPt0'/><g id=\"p1-c\"/></defs><use xlink:href='#p1-gpPt0'/>"
            "<rect fill=\"url(#p1-c)\" grid=\"x\"/><a href=\"http://x\"/></svg>");
}

TEST(Report, SummaryTableHasOneColumnPerSyntheticSet) {
  Fixture f = fixture();
  SummaryTable t = summary_table(f.reports, f.ctx.real);
  ASSERT_EQ(t.head, (std::vector<std::string>{"metric", "real", "set<a>&'b'", "baseline"}));
  for (const SummaryRow& r : t.rows) EXPECT_EQ(r.cells.size(), 3u) << r.label;
  EXPECT_EQ(t.rows[0].label, "graphs");
  EXPECT_EQ(t.rows[0].cells, (std::vector<std::string>{"20", "15", "10"}));
  std::string text = summary_text(t);
  EXPECT_NE(text.find("heavy hitters K=10 (*"), std::string::npos) << text;
  EXPECT_NE(text.find("EMD/mean response_time"), std::string::npos) << text;
  EXPECT_NE(text.find("(*N: the real set has fewer than K"), std::string::npos) << text;
}

TEST(Report, HtmlIsOnePageWithAnInlineSvgPerPlot) {
  REQUIRE_GNUPLOT();
  Fixture f = fixture();
  std::string html = html_report(f.reports, f.ctx);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>\n<html", 0), 0u);
  EXPECT_EQ(count(html, "<html"), 1u);
  EXPECT_EQ(count(html, "</html>"), 1u);
  EXPECT_EQ(count(html, "<body>"), 1u);
  EXPECT_EQ(count(html, "</body>"), 1u);
  // 6 CDF overlays, the popular-call bars, the heavy-hitter curve; every one closed.
  EXPECT_EQ(count(html, "<svg"), 8u);
  EXPECT_EQ(count(html, "</svg>"), 8u);
  EXPECT_EQ(count(html, "<figure>"), 8u);
  EXPECT_EQ(count(html, "<?xml"), 0u);
  // Self-contained: nothing to fetch, nothing to run.
  EXPECT_EQ(count(html, "<script"), 0u);
  EXPECT_EQ(count(html, "<link"), 0u);
  EXPECT_EQ(count(html, " src="), 0u);
  // Ids unique across plots.
  EXPECT_EQ(count(html, "id=\"gnuplot_canvas\""), 0u);
  EXPECT_EQ(count(html, "id=\"plot0-gnuplot_canvas\""), 1u);
  EXPECT_EQ(count(html, "id=\"plot7-gnuplot_canvas\""), 1u);
  // Names escaped everywhere: the summary header, the sets, the call table, the plots' keys.
  EXPECT_EQ(count(html, "set<a>"), 0u);
  EXPECT_EQ(count(html, "MS_<b>"), 0u);
  EXPECT_EQ(count(html, "val<1>"), 0u);
  EXPECT_NE(html.find("<th>set&lt;a&gt;&amp;&#39;b&#39;</th><th>baseline</th></tr>"),
            std::string::npos);
  EXPECT_NE(html.find("MS_&lt;b&gt;&amp;&quot;x&quot;"), std::string::npos);
  EXPECT_NE(html.find("b&amp;c.jsonl"), std::string::npos);
  // One column per synthetic set (+ metric, real) in the summary table.
  size_t sum = html.find("<h2>Summary</h2>");
  ASSERT_NE(sum, std::string::npos);
  std::string head = html.substr(sum, html.find("</tr>", sum) - sum);
  EXPECT_EQ(count(head, "<th>"), 4u) << head;
  // Same input, same bytes.
  EXPECT_EQ(html_report(f.reports, f.ctx), html);
}

TEST(Report, MissingGnuplotIsAClearError) {
  Fixture f = fixture();
  HtmlReportOptions opt;
  opt.gnuplot.binary = "/nonexistent/gnuplot-for-tracelm";
  try {
    html_report(f.reports, f.ctx, opt);
    FAIL() << "no error";
  } catch (const GnuplotError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("/nonexistent/gnuplot-for-tracelm"), std::string::npos) << m;
    EXPECT_NE(m.find("gnuplot-nox"), std::string::npos) << m;
  }
  EXPECT_FALSE(gnuplot_available(opt.gnuplot.binary));
  // Without require_plots: the tables, and why there are no plots.
  opt.require_plots = false;
  std::string why;
  std::string html = html_report(f.reports, f.ctx, opt, &why);
  EXPECT_NE(why.find("/nonexistent/gnuplot-for-tracelm"), std::string::npos) << why;
  EXPECT_EQ(count(html, "<svg"), 0u);
  EXPECT_NE(html.find("Plots not drawn"), std::string::npos);
  EXPECT_NE(html.find("<h2>Summary</h2>"), std::string::npos);
}

TEST(Report, GnuplotBinaryComesFromTheEnvironment) {
  {
    ScopedGnuplotEnv env("/opt/gp/bin/gnuplot");
    EXPECT_EQ(GnuplotOptions{}.binary, "/opt/gp/bin/gnuplot");
  }
  ScopedGnuplotEnv env(nullptr);
  EXPECT_EQ(GnuplotOptions{}.binary, "gnuplot");
}

TEST(Report, GnuplotFailureNamesTheCommandAndItsError) {
  REQUIRE_GNUPLOT();
  GnuplotPlot p;
  p.script = "plot 'missing.dat' using 1:2\n";
  try {
    render_svg(p);
    FAIL() << "no error";
  } catch (const GnuplotError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("gnuplot failed: `" + GnuplotOptions{}.binary + " "), std::string::npos) << m;
    EXPECT_NE(m.find("missing.dat"), std::string::npos) << m;
  }
  p.script = "plot 'd.dat' using 1:2 with lines title 'a<b'\n";
  p.data = {{"d.dat", "1 2\n2 3\n"}};
  std::string svg = render_svg(p);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("a&lt;b"), std::string::npos);
}

TEST(Report, EvaluateWritesTheReport) {
  REQUIRE_GNUPLOT();
  testing::TempDir d;
  {
    CorpusWriter w(d.file("real.jsonl")), s(d.file("syn.jsonl"));
    for (int i = 0; i < 8; ++i) w.write(graph(i, 1 + i % 3));
    for (int i = 0; i < 5; ++i) s.write(graph(i + 1, 1 + i % 2));
    w.close();
    s.close();
  }
  auto r = testing::run_tracelm(
      "evaluate --real " + d.file("real.jsonl") + " --synthetic a=" + d.file("syn.jsonl") +
      " --synthetic b=" + d.file("syn.jsonl") + " --report " + d.file("r.html"));
  ASSERT_EQ(r.status, 0) << r.out;
  std::string html = testing::read_file(d.file("r.html"));
  EXPECT_EQ(count(html, "<svg"), 8u);
  EXPECT_NE(html.find("<th>a</th><th>b</th></tr>"), std::string::npos);
  // A missing gnuplot fails the command, naming it, and writes no report.
  {
    ScopedGnuplotEnv env("/nonexistent/gp");
    r = testing::run_tracelm("evaluate -q --real " + d.file("real.jsonl") + " --synthetic a=" +
                             d.file("syn.jsonl") + " --report " + d.file("r3.html"));
  }
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("cannot run gnuplot: `/nonexistent/gp "), std::string::npos) << r.out;
  EXPECT_FALSE(testing::exists(d.file("r3.html")));
}

}  // namespace
}  // namespace tracelm
