#include "downstream/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "report/html_report.h"

namespace tracelm::downstream {
namespace {

constexpr const char* kColors[] = {"#333333", "#1f77b4", "#d62728", "#2ca02c",
                                   "#ff7f0e", "#9467bd", "#8c564b", "#17becf"};

std::string fmt_v(double v, double scale) {
  if (!std::isfinite(v)) return "n/a";
  return fmt::format("{:.{}f}", v * scale, scale > 1 ? 1 : 3);
}

std::string data_quote(const std::string& s) {  // a gnuplot data-file string
  std::string out = "\"";
  for (char c : s) out += c == '"' || c < ' ' ? '\'' : c;
  return out + "\"";
}

std::string table_html(const ExperimentResult& r) {
  std::string h =
      "<table>\n<tr><th>app</th><th>training set</th><th>train graphs</th>"
      "<th>test samples</th><th>test positives %</th>";
  for (const std::string& m : r.metric_names) h += "<th>" + html_escape(m) + " (mean ± sd)</th>";
  h += "<th>gap to " + html_escape(r.reference) + " ± SE</th><th>as good as " +
       html_escape(r.reference) + "?</th></tr>\n";
  for (const SourceOutcome& s : r.rows) {
    double tg = 0, ts = 0, pr = 0, n = s.seeds.empty() ? 1 : static_cast<double>(s.seeds.size());
    for (const SeedOutcome& o : s.seeds) {
      tg += static_cast<double>(o.train_graphs);
      ts += static_cast<double>(o.test_samples);
      pr += std::isfinite(o.test_positive_rate) ? o.test_positive_rate : 0;
    }
    h += fmt::format(
        "<tr><td>{}</td><td>{}</td><td class=\"n\">{:.0f}</td><td class=\"n\">{:.0f}</td>"
        "<td class=\"n\">{:.1f}</td>",
        html_escape(s.app), html_escape(s.source), tg / n, ts / n, 100 * pr / n);
    for (const MeanSd& m : s.metrics)
      h += "<td class=\"n\">" + fmt_v(m.mean, r.display_scale) + " ± " +
           fmt_v(m.sd, r.display_scale) + "</td>";
    if (s.source == r.reference) {
      h += "<td>-</td><td>-</td></tr>\n";
    } else {
      h += "<td class=\"n\">" + fmt_v(s.gap.mean, r.display_scale) + " ± " +
           fmt_v(s.gap_se, r.display_scale) + "</td><td>" +
           (s.pass ? "yes" : "<span class=\"warn\">no</span>") + "</td></tr>\n";
    }
  }
  return h + "</table>\n";
}

// The primary metric per kind of positive (SourceOutcome::by_kind), when any.
std::string kinds_html(const ExperimentResult& r) {
  std::vector<std::string> kinds;
  for (const SourceOutcome& s : r.rows)
    for (const auto& [kind, m] : s.by_kind)
      if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) kinds.push_back(kind);
  if (kinds.empty()) return "";
  std::sort(kinds.begin(), kinds.end());
  std::string h = "<p>" + html_escape(r.metric_names.empty() ? "metric" : r.metric_names[0]) +
                  " of the negative test samples against the positives of each kind (mean ± "
                  "sd over seeds):</p>\n<table>\n<tr><th>app</th><th>training set</th>";
  for (const std::string& k : kinds) h += "<th>" + html_escape(k) + "</th>";
  h += "</tr>\n";
  for (const SourceOutcome& s : r.rows) {
    h += "<tr><td>" + html_escape(s.app) + "</td><td>" + html_escape(s.source) + "</td>";
    for (const std::string& k : kinds) {
      auto it = s.by_kind.find(k);
      h += it == s.by_kind.end() ? std::string("<td>n/a</td>")
                                 : "<td class=\"n\">" + fmt_v(it->second.mean, r.display_scale) +
                                       " ± " + fmt_v(it->second.sd, r.display_scale) + "</td>";
    }
    h += "</tr>\n";
  }
  return h + "</table>\n";
}

GnuplotPlot chart(const ExperimentResult& r) {
  std::vector<std::string> apps, sources;
  std::map<std::pair<std::string, std::string>, const SourceOutcome*> cell;
  for (const SourceOutcome& s : r.rows) {
    if (std::find(apps.begin(), apps.end(), s.app) == apps.end()) apps.push_back(s.app);
    if (std::find(sources.begin(), sources.end(), s.source) == sources.end())
      sources.push_back(s.source);
    cell[{s.app, s.source}] = &s;
  }
  std::string data;
  for (const std::string& a : apps) {
    data += data_quote(a);
    for (const std::string& s : sources) {
      auto it = cell.find({a, s});
      double m = it == cell.end() ? NAN : it->second->metrics[0].mean;
      double sd = it == cell.end() ? NAN : it->second->metrics[0].sd;
      data += std::isfinite(m) ? fmt::format(" {:.6g}", m * r.display_scale) : " NaN";
      data += std::isfinite(sd) ? fmt::format(" {:.6g}", sd * r.display_scale) : " 0";
    }
    data += "\n";
  }
  GnuplotPlot p;
  p.data.emplace_back("bars.dat", data);
  std::string plot;
  for (size_t i = 0; i < sources.size(); ++i)
    plot += fmt::format("{}'bars.dat' using {}:{}{} title {} lc rgb '{}'", i ? ", " : "plot ",
                        2 + 2 * i, 3 + 2 * i, i == 0 ? ":xtic(1)" : "", gnuplot_quote(sources[i]),
                        kColors[i % 8]);
  std::string metric = r.metric_names.empty() ? "" : r.metric_names[0];
  p.script = fmt::format(
      "set style data histogram\nset style histogram errorbars gap 1 lw 1\n"
      "set style fill solid 0.75 border -1\nset boxwidth 0.9\nset key outside right top\n"
      "set grid ytics\nset ylabel {}\nset yrange [0:*]\n{}\n",
      gnuplot_quote(metric + (r.display_scale > 1 ? " (%)" : "")), plot);
  return p;
}

}  // namespace

std::string downstream_html(const std::vector<ExperimentResult>& results,
                            const GnuplotOptions& gnuplot, bool require_plots) {
  std::vector<GnuplotPlot> plots;
  for (const ExperimentResult& r : results) plots.push_back(chart(r));
  std::vector<std::string> svgs;
  std::string plot_error;
  if (!plots.empty()) {
    try {
      svgs = render_svgs(plots, gnuplot);
    } catch (const GnuplotError& e) {
      if (require_plots) throw;
      plot_error = e.what();
    }
  }
  std::string h;
  for (size_t i = 0; i < results.size(); ++i) {
    const ExperimentResult& r = results[i];
    h += "<h2>Training on synthetic data: " + html_escape(r.task) + "</h2>\n";
    h += "<p class=\"note\">Model: " + html_escape(r.model) + ". Labels: " + html_escape(r.labels) +
         fmt::format(
             ". {} seeds; every model is tested on the same real test samples of its "
             "seed. As good as real: |mean gap| &lt;= max({}, 1.96 SE). Defined in "
             "docs/downstream.md of tracelm.</p>\n",
             r.seeds, fmt_v(r.tolerance, r.display_scale));
    for (size_t a = 0; a < r.apps.size() && a < r.split_notes.size(); ++a)
      if (!r.split_notes[a].empty())
        h += "<p class=\"note\">Split of " + html_escape(r.apps[a].name) + " " +
             html_escape(r.split_notes[a]) + ".</p>\n";
    h += table_html(r);
    h += kinds_html(r);
    if (i < svgs.size()) {
      h += "<figure>\n" + inline_svg(svgs[i], fmt::format("ds{}-", i));
      if (h.back() != '\n') h += '\n';
      h += "<figcaption>" +
           html_escape(fmt::format("{} per app and training set: mean over seeds, error bars ± "
                                   "one standard deviation.",
                                   r.metric_names.empty() ? "" : r.metric_names[0])) +
           "</figcaption>\n</figure>\n";
    }
  }
  if (!plot_error.empty())
    h += "<p class=\"warn\">Plots not drawn: " + html_escape(plot_error) + "</p>\n";
  return h;
}

std::string downstream_html_page(const std::vector<ExperimentResult>& results,
                                 const GnuplotOptions& gnuplot, bool require_plots) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<title>tracelm downstream report</title>\n<style>\n"
         "body{font-family:sans-serif;margin:2em auto;max-width:1100px;padding:0 1em}\n"
         "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.2em .6em}\n"
         "td.n{text-align:right}figure svg{max-width:100%;height:auto}\n"
         ".note{color:#555;font-size:.9em}.warn{color:#a00;font-weight:bold}\n"
         "</style>\n</head>\n<body>\n<h1>tracelm downstream report</h1>\n" +
         downstream_html(results, gnuplot, require_plots) + "</body>\n</html>\n";
}

}  // namespace tracelm::downstream
