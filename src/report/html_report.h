// The realism report as ONE self-contained HTML file: the summary table
// (summary_table.h; one column per synthetic set, plus the real set where a
// number is meaningful for it) and plots drawn by gnuplot (gnuplot.h) as SVG,
// inline in the page: no scripts, no style sheets, images or fonts to fetch.
//
// The plots (docs/metrics.md, "The HTML report"):
//  - CDF overlays, real vs each synthetic set, from the 101 quantiles of each
//    Emd: response time, edges per graph, depth, fan-out, in-degree,
//    out-degree (log x axis when the values span more than 100x);
//  - popular-call bars: real vs synthetic share of all edges of each of the
//    real set's top calls (the first HtmlReportOptions::bar_calls of them)
//    and of "other" (every other call); a table under the plot names every
//    call;
//  - heavy-hitter accuracy against K;
// and, without a plot, the caller flows: per synthetic set, the callers whose
// split over callees differs most (HtmlReportOptions::flow_callers of them).
//
// Contract:
//  - html_report() is a function of its arguments (no clock, no randomness):
//    the same reports give the same bytes, given the same gnuplot.
//  - Every name and path (set names, microservices, services, file paths,
//    gnuplot's error text) is HTML-escaped; in the plots gnuplot writes them
//    as literal (non-"enhanced") SVG text.
//  - All reports must have been computed against the same real set (the real
//    curves are the first report's) with the same options.
//  - gnuplot runs once per report (all plots in one process). When it is
//    missing or fails, html_report() throws GnuplotError, or, with
//    require_plots = false, writes the report without plots and says why in
//    their place.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "eval/metrics.h"
#include "report/gnuplot.h"

namespace tracelm {

struct ReportContext {
  std::string title = "tracelm realism report";
  std::string real_path;                     // shown when not empty
  StructureSummary real;                     // the real set (the "real" column)
  std::string train_path;                    // shown when not empty
  uint64_t train_graphs = 0;                 // with train_path
  std::vector<std::string> synthetic_paths;  // one per report, or empty
  std::string note;                          // a paragraph under the title, plain text
  std::string extra_html;  // sections appended at the end (e.g. downstream results), HTML
};

struct HtmlReportOptions {
  GnuplotOptions gnuplot;
  bool require_plots = true;  // false: a report without plots when gnuplot fails
  size_t bar_calls = 30;      // popular calls drawn as bars
  size_t flow_callers = 10;   // callers listed per set under "Caller flows"
};

// With require_plots = false, *plot_error (when given) is set to why the
// plots were not drawn, or cleared when they were.
std::string html_report(const std::vector<RealismReport>& reports, const ReportContext& ctx,
                        const HtmlReportOptions& opt = {}, std::string* plot_error = nullptr);

// Text as HTML (element content or a quoted attribute value): & < > " '
// escaped.
std::string html_escape(std::string_view text);

// An SVG document (from "<svg") ready to sit inline in a page beside others:
// every id="x" / id='x' becomes id="PREFIXx", and every reference to one
// (href="#x", xlink:href, url(#x)) follows, so that the ids of two plots
// never collide.
std::string inline_svg(std::string_view svg, std::string_view id_prefix);

}  // namespace tracelm
