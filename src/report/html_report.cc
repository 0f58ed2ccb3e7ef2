#include "report/html_report.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "report/summary_table.h"

namespace tracelm {

namespace {

constexpr const char* kRealColor = "#000000";
// One color per synthetic set (by its position), the same in every plot.
constexpr std::array<const char*, 8> kColors = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                                "#9467bd", "#8c564b", "#e377c2", "#17becf"};

const char* color(size_t i) { return kColors[i % kColors.size()]; }

constexpr const char* kCss =
    R"(body{font-family:sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.2em .6em}
th{background:#f0f0f0}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.sub td:first-child{padding-left:1.8em;color:#555}
figure{margin:1.5em 0}
figure svg{max-width:100%;height:auto;display:block}
figcaption{color:#444;font-size:.9em;max-width:60em;margin-top:.3em}
.note{color:#555;font-size:.9em}
.warn{color:#a00;font-weight:bold}
)";

// A plot of the report: where it goes, what it says, how gnuplot draws it.
struct Figure {
  std::string section;  // h2 above the first figure of each section
  std::string title;    // plain text
  std::string caption;  // plain text
  GnuplotPlot plot;
  std::string after_html;  // escaped HTML under the plot
};

struct CdfSpec {
  const char* emd;    // RealismReport::emd name
  const char* label;  // x axis
};
constexpr CdfSpec kCdfs[] = {
    {"response_time", "response time (ms)"},
    {"edges_per_graph", "edges per graph"},
    {"depth", "depth (levels of the graph)"},
    {"fanout", "fan-out (calls made under an edge)"},
    {"in_degree", "in-degree (calls into a microservice, per graph)"},
    {"out_degree", "out-degree (calls made by a microservice, per graph)"},
};

std::string fnum(double x) { return fmt::format("{:.3f}", x); }

std::optional<Figure> cdf_figure(const std::vector<RealismReport>& reps, const CdfSpec& spec) {
  struct Series {
    std::string title;
    const std::vector<double>* q;
    const char* color;
    double width;
  };
  std::vector<Series> series;
  const Emd* e0 = reps[0].find_emd(spec.emd);
  if (e0 && !e0->real_cdf.empty()) series.push_back({"real", &e0->real_cdf, kRealColor, 2.5});
  std::string emds;
  for (size_t i = 0; i < reps.size(); ++i) {
    const Emd* e = reps[i].find_emd(spec.emd);
    if (!e || e->synthetic_cdf.empty()) continue;
    series.push_back({reps[i].name, &e->synthetic_cdf, color(i), 1.5});
    if (e->defined)
      emds += fmt::format("{}{} {}", emds.empty() ? "" : ", ", reps[i].name, fnum(e->normalized));
  }
  if (series.empty()) return std::nullopt;
  double min_pos = std::numeric_limits<double>::infinity(), max = 0;
  for (const Series& s : series)
    for (double x : *s.q) {
      if (x > 0) min_pos = std::min(min_pos, x);
      max = std::max(max, x);
    }
  bool log = std::isfinite(min_pos) && max / min_pos >= 100;
  double floor = log ? min_pos / 2 : 0;

  Figure f;
  f.section = "Distributions: CDF overlays";
  f.title = spec.label;
  f.caption = fmt::format(
      "Empirical CDF of {} ({} quantiles per set): the real set in black, each synthetic set in "
      "its color.",
      spec.label, kCdfPoints);
  if (!emds.empty()) f.caption += " EMD / real mean: " + emds + ".";
  if (log) f.caption += fmt::format(" Log x axis; values of 0 or less are drawn at {:g}.", floor);
  std::string plot;
  for (size_t j = 0; j < series.size(); ++j) {
    const std::vector<double>& q = *series[j].q;
    std::string data;
    for (size_t k = 0; k < q.size(); ++k) {
      double x = log && q[k] <= 0 ? floor : q[k];
      double y = q.size() > 1 ? static_cast<double>(k) / static_cast<double>(q.size() - 1) : 1.0;
      if (std::isfinite(x)) data += fmt::format("{:.9g} {:.6g}\n", x, y);
    }
    std::string file = fmt::format("s{}.dat", j);
    f.plot.data.emplace_back(file, std::move(data));
    plot += fmt::format("{}'{}' using 1:2 with steps lw {} lc rgb '{}' title {}",
                        j ? ", \\\n  " : "plot ", file, series[j].width, series[j].color,
                        gnuplot_quote(series[j].title));
  }
  f.plot.script = fmt::format(
      "set xlabel {}\nset ylabel 'fraction of values <= x'\nset yrange [0:1.02]\nset key bottom "
      "right opaque\nset grid\n{}{}\n",
      gnuplot_quote(spec.label), log ? "set logscale x\n" : "", plot);
  return f;
}

std::optional<Figure> popular_figure(const std::vector<RealismReport>& reps, size_t bar_calls) {
  const PopularCalls& p0 = reps[0].popular;
  size_t n = std::min(bar_calls, p0.calls.size());
  if (n == 0) return std::nullopt;
  Figure f;
  f.section = "Popular calls";
  f.title = "popular calls";
  f.caption = fmt::format(
      "Share of all edges that are each of the real set's {} most frequent calls (caller, "
      "callee, type), and ('other') that are none of them, in the real set (black) and in each "
      "synthetic set: the P and Q of the popular-call KL divergence, KL(real || synthetic).",
      p0.calls.size());
  f.caption +=
      n < p0.calls.size()
          ? fmt::format(" The first {} and 'other' are drawn; the table names every call.", n)
          : std::string(" The table names every call.");
  std::string data;
  for (size_t i = 0; i < n; ++i) {
    data += fmt::format("{} {:.9g}", i + 1, p0.real_p[i]);
    for (const RealismReport& r : reps)
      data +=
          fmt::format(" {:.9g}", i < r.popular.synthetic_p.size() ? r.popular.synthetic_p[i] : 0.0);
    data += '\n';
  }
  data += fmt::format("other {:.9g}", p0.real_other_p);
  for (const RealismReport& r : reps) data += fmt::format(" {:.9g}", r.popular.synthetic_other_p);
  data += '\n';
  f.plot.width = 960;
  f.plot.data.emplace_back("bars.dat", std::move(data));
  std::string plot = "plot 'bars.dat' using 2:xtic(1) lc rgb '#000000' title 'real'";
  for (size_t i = 0; i < reps.size(); ++i)
    plot += fmt::format(", \\\n  '' using {} lc rgb '{}' title {}", i + 3, color(i),
                        gnuplot_quote(reps[i].name));
  f.plot.script = fmt::format(
      "set style data histogram\nset style histogram clustered gap 1\nset style fill solid 0.85 "
      "border -1\nset xlabel 'rank of the call in the real set (see the table)'\nset ylabel "
      "'share of all edges'\nset yrange [0:*]\nset key top right opaque\nset grid "
      "ytics\nset xtics font ',9'\n{}\n",
      plot);

  std::string t = "<details><summary>The " + std::to_string(p0.calls.size()) +
                  " popular calls</summary>\n<table>\n<tr><th>rank</th><th>caller</th><th>"
                  "callee</th><th>type</th><th>real</th>";
  for (const RealismReport& r : reps) t += "<th>" + html_escape(r.name) + "</th>";
  t += "</tr>\n";
  for (size_t i = 0; i < p0.calls.size(); ++i) {
    const Call& c = p0.calls[i];
    t += fmt::format(
        "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td "
        "class=\"n\">{:.4f}</td>",
        i + 1, html_escape(c.caller), html_escape(c.callee), html_escape(call_type_name(c.type)),
        p0.real_p[i]);
    for (const RealismReport& r : reps)
      t += fmt::format("<td class=\"n\">{:.4f}</td>",
                       i < r.popular.synthetic_p.size() ? r.popular.synthetic_p[i] : 0.0);
    t += "</tr>\n";
  }
  t += fmt::format(
      "<tr><td></td><td colspan=\"3\">other (every other call)</td><td class=\"n\">{:.4f}</td>",
      p0.real_other_p);
  for (const RealismReport& r : reps)
    t += fmt::format("<td class=\"n\">{:.4f}</td>", r.popular.synthetic_other_p);
  t += "</tr>\n";
  f.after_html = t + "</table>\n</details>\n";
  return f;
}

// The callers whose split over callees differs most from the real set's, per
// synthetic set (RealismReport::flows): where a set loses a flow that the
// popular-call KL averages away.
std::string flows_html(const std::vector<RealismReport>& reps, size_t rows) {
  std::string h =
      "<p class=\"note\">Per real caller: JS = Jensen-Shannon divergence (bits, 0 to 1) between "
      "its real and synthetic split over (callee, type); weight = its share of the real edges; "
      "the metric is the sum of weight &times; JS. The callee whose share changed most is "
      "shown with its real and synthetic shares of the caller's calls.</p>\n";
  for (const RealismReport& r : reps) {
    if (!r.flows.defined) continue;
    h += fmt::format(
        "<details><summary>{}: {:.4f}, the {} callers that contribute most</summary>\n<table>\n"
        "<tr><th>caller</th><th>weight</th><th>JS</th><th>weight &times; JS</th><th>real "
        "edges</th><th>synthetic edges</th><th>callee changed most</th><th>real share</th>"
        "<th>synthetic share</th></tr>\n",
        html_escape(r.name), r.flows.js, std::min(rows, r.flows.callers.size()));
    for (size_t i = 0; i < r.flows.callers.size() && i < rows; ++i) {
      const CallerFlow& f = r.flows.callers[i];
      h += fmt::format(
          "<tr><td>{}</td><td class=\"n\">{:.4f}</td><td class=\"n\">{:.3f}</td><td "
          "class=\"n\">{:.5f}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{} "
          "({})</td><td class=\"n\">{:.3f}</td><td class=\"n\">{:.3f}</td></tr>\n",
          html_escape(f.caller), f.weight, f.js, f.weight * f.js, f.real_edges, f.synthetic_edges,
          html_escape(f.most_changed.callee), html_escape(call_type_name(f.most_changed.type)),
          f.real_share, f.synthetic_share);
    }
    h += "</table>\n</details>\n";
  }
  return h;
}

std::optional<Figure> heavy_hitter_figure(const std::vector<RealismReport>& reps) {
  const std::vector<HeavyHitterPoint>& h0 = reps[0].heavy_hitters;
  if (h0.empty()) return std::nullopt;
  Figure f;
  f.section = "Heavy hitters";
  f.title = "heavy-hitter accuracy";
  f.caption =
      "Accuracy of each synthetic set's top-K microservices (by calls received) against the real "
      "set's: |top-K(real) and top-K(synthetic)| / K, for each K.";
  size_t k_min = h0.front().k, k_max = h0.front().k, capped_at = 0;
  std::string xtics, capped;
  for (const HeavyHitterPoint& p : h0) {
    k_min = std::min(k_min, p.k);
    k_max = std::max(k_max, p.k);
    xtics += fmt::format("{}{}", xtics.empty() ? "" : ", ", p.k);
    if (p.k_effective < p.k) {
      capped += fmt::format("{}{}", capped.empty() ? "" : ", ", p.k);
      capped_at = p.k_effective;
    }
  }
  if (!capped.empty())
    f.caption +=
        fmt::format(" K = {} capped at the real set's {} microservices.", capped, capped_at);
  std::string plot;
  for (size_t i = 0; i < reps.size(); ++i) {
    std::string data;
    for (const HeavyHitterPoint& p : reps[i].heavy_hitters)
      data += fmt::format("{} {:.6g}\n", p.k, 100 * p.accuracy);
    if (data.empty()) continue;
    std::string file = fmt::format("hh{}.dat", i);
    f.plot.data.emplace_back(file, std::move(data));
    plot += fmt::format("{}'{}' using 1:2 with linespoints lw 2 pt 7 ps 0.8 lc rgb '{}' title {}",
                        plot.empty() ? "plot " : ", \\\n  ", file, color(i),
                        gnuplot_quote(reps[i].name));
  }
  if (plot.empty()) return std::nullopt;
  f.plot.script = fmt::format(
      "set logscale x\nset xrange [{}:{}]\nset xtics ({})\nset yrange [0:105]\nset xlabel 'K "
      "(top-K microservices by calls received)'\nset ylabel 'accuracy (%)'\nset key bottom "
      "right opaque\nset grid\n{}\n",
      0.8 * static_cast<double>(k_min), 1.25 * static_cast<double>(k_max), xtics, plot);
  return f;
}

std::string count(uint64_t n) { return std::to_string(n); }

std::string sets_table(const std::vector<RealismReport>& reps, const ReportContext& ctx) {
  std::string t =
      "<table>\n<tr><th>set</th><th>file</th><th>graphs</th><th>in the distribution "
      "metrics</th></tr>\n";
  auto row = [&](const std::string& name, const std::string& path, uint64_t graphs,
                 const std::string& used) {
    t += fmt::format(
        "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
        html_escape(name), html_escape(path), graphs, html_escape(used));
  };
  row("real", ctx.real_path, ctx.real.graphs, count(ctx.real.graphs));
  if (!ctx.train_path.empty()) row("training", ctx.train_path, ctx.train_graphs, "memorization");
  for (size_t i = 0; i < reps.size(); ++i) {
    const RealismReport& r = reps[i];
    row(r.name, i < ctx.synthetic_paths.size() ? ctx.synthetic_paths[i] : std::string(),
        r.validity.graphs,
        r.calls_only ? fmt::format("{} calls (not graphs)", r.synthetic_structure.edges)
                     : count(r.evaluated) + (r.options.valid_only ? " (valid ones)" : " (all)"));
  }
  return t + "</table>\n";
}

std::string summary_html(const SummaryTable& s) {
  std::string t = "<table>\n<tr>";
  for (const std::string& h : s.head) t += "<th>" + html_escape(h) + "</th>";
  t += "</tr>\n";
  for (const SummaryRow& r : s.rows) {
    t += r.indent ? "<tr class=\"sub\">" : "<tr>";
    t += "<td>" + html_escape(r.label) + "</td>";
    for (const std::string& c : r.cells) t += "<td class=\"n\">" + html_escape(c) + "</td>";
    t += "</tr>\n";
  }
  t += "</table>\n";
  for (const std::string& n : s.notes) t += "<p class=\"note\">" + html_escape(n) + "</p>\n";
  return t;
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string inline_svg(std::string_view svg, std::string_view id_prefix) {
  std::string out;
  out.reserve(svg.size() + 64);
  auto at = [&](size_t i, std::string_view s) { return svg.substr(i, s.size()) == s; };
  size_t i = 0;
  while (i < svg.size()) {
    // id="x" / id='x' (an attribute: after white space)
    if (at(i, "id=") && i > 0 && std::isspace(static_cast<unsigned char>(svg[i - 1])) &&
        i + 3 < svg.size() && (svg[i + 3] == '"' || svg[i + 3] == '\'')) {
      out.append(svg.substr(i, 4)).append(id_prefix);
      i += 4;
    } else if (at(i, "href=") && i + 6 < svg.size() && (svg[i + 5] == '"' || svg[i + 5] == '\'') &&
               svg[i + 6] == '#') {
      out.append(svg.substr(i, 7)).append(id_prefix);
      i += 7;
    } else if (at(i, "url(#")) {
      out.append("url(#").append(id_prefix);
      i += 5;
    } else {
      out += svg[i++];
    }
  }
  return out;
}

std::string html_report(const std::vector<RealismReport>& reps, const ReportContext& ctx,
                        const HtmlReportOptions& opt, std::string* plot_error_out) {
  std::vector<Figure> figs;
  if (!reps.empty()) {
    for (const CdfSpec& s : kCdfs)
      if (auto f = cdf_figure(reps, s)) figs.push_back(std::move(*f));
    if (auto f = popular_figure(reps, opt.bar_calls)) figs.push_back(std::move(*f));
    if (auto f = heavy_hitter_figure(reps)) figs.push_back(std::move(*f));
  }
  std::vector<std::string> svgs;
  std::string plot_error;
  try {
    std::vector<GnuplotPlot> plots;
    for (const Figure& f : figs) plots.push_back(f.plot);
    svgs = render_svgs(plots, opt.gnuplot);
  } catch (const GnuplotError& e) {
    if (opt.require_plots) throw;
    plot_error = e.what();
  }
  if (plot_error_out) *plot_error_out = plot_error;

  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
                  html_escape(ctx.title) + "</title>\n<style>\n" + kCss +
                  "</style>\n</head>\n<body>\n<h1>" + html_escape(ctx.title) + "</h1>\n";
  if (!ctx.note.empty()) h += "<p class=\"note\">" + html_escape(ctx.note) + "</p>\n";
  h += "<p class=\"note\">Every number is defined in docs/metrics.md of tracelm.</p>\n";
  h += "<h2>Sets</h2>\n" + sets_table(reps, ctx);
  h += "<h2>Summary</h2>\n" + summary_html(summary_table(reps, ctx.real));
  if (reps.empty()) h += "<p class=\"warn\">No synthetic set: nothing to plot.</p>\n";
  if (!plot_error.empty())
    h += "<p class=\"warn\">Plots not drawn: " + html_escape(plot_error) + "</p>\n";
  std::string section;
  for (size_t i = 0; i < figs.size(); ++i) {
    const Figure& f = figs[i];
    if (f.section != section) {
      section = f.section;
      h += "<h2>" + html_escape(section) + "</h2>\n";
    }
    h += "<figure>\n";
    if (i < svgs.size()) {
      std::string svg = inline_svg(svgs[i], fmt::format("plot{}-", i));
      const std::string gp_title = "<title>Gnuplot</title>";
      size_t t = svg.find(gp_title);
      if (t != std::string::npos)
        svg.replace(t, gp_title.size(), "<title>" + html_escape(f.title) + "</title>");
      h += svg;
      if (h.back() != '\n') h += '\n';
    }
    h += "<figcaption>" + html_escape(f.caption) + "</figcaption>\n</figure>\n";
    h += f.after_html;
  }
  if (!reps.empty()) h += "<h2>Caller flows</h2>\n" + flows_html(reps, opt.flow_callers);
  h += ctx.extra_html;
  return h + "</body>\n</html>\n";
}

}  // namespace tracelm
