#include "tasks/task_report.h"

#include <cstdio>
#include <stdexcept>

#include "report/html_report.h"

namespace tracelm {

namespace {

std::string pct(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", 100 * x);
  return b;
}

}  // namespace

std::string task_report_section(const std::vector<nlohmann::json>& results) {
  std::string h = "<section id=\"tasks\">\n<h2>Downstream tasks</h2>\n";
  for (const nlohmann::json& r : results) {
    if (!r.is_object() || !r.contains("task") || !r.contains("results") || !r["results"].is_array())
      throw std::invalid_argument("not a task result (tracelm tasks eval --json)");
    std::string task = r["task"].get<std::string>();
    h += "<h3>" + html_escape(task) + "</h3>\n<p>" +
         std::to_string(r.value("n_train", int64_t{0})) + " train records, " +
         std::to_string(r.value("n_test", int64_t{0})) + " test records</p>\n<table>\n<tr>" +
         "<th>model</th><th>n</th><th>accuracy</th>";
    if (task == "infill-attribute") h += "<th>type</th><th>destination</th>";
    if (task == "infill-call") h += "<th>strict</th><th>parsed</th>";
    if (task == "predict-latency" || task == "predict-uncommon")
      h += "<th>balanced accuracy</th><th>positive rate</th>";
    h += "</tr>\n";
    for (const nlohmann::json& x : r["results"]) {
      h += "<tr><td>" + html_escape(x.value("name", "")) + "</td><td>" +
           std::to_string(x.value("n", int64_t{0})) + "</td><td>" + pct(x.value("accuracy", 0.0)) +
           "</td>";
      if (task == "infill-attribute")
        for (const char* a : {"type", "destination"})
          h += "<td>" +
               (x.contains("per_attribute") && x["per_attribute"].contains(a)
                    ? pct(x["per_attribute"][a].value("accuracy", 0.0))
                    : std::string("-")) +
               "</td>";
      if (task == "infill-call")
        h += "<td>" + pct(x.value("strict_accuracy", 0.0)) + "</td><td>" +
             std::to_string(x.value("parsed", int64_t{0})) + "</td>";
      if (task == "predict-latency" || task == "predict-uncommon")
        h += "<td>" + pct(x.value("balanced_accuracy", 0.0)) + "</td><td>" +
             pct(x.value("positive_rate", 0.0)) + "</td>";
      h += "</tr>\n";
    }
    h += "</table>\n";
  }
  return h + "</section>\n";
}

std::string task_report_page(const std::vector<nlohmann::json>& results, const std::string& title) {
  return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
         "</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:"
         "collapse}td,th{border:1px solid #999;padding:3px 8px;text-align:right}td:first-child,"
         "th:first-child{text-align:left}</style></head>\n<body>\n<h1>" +
         html_escape(title) + "</h1>\n" + task_report_section(results) + "</body></html>\n";
}

}  // namespace tracelm
