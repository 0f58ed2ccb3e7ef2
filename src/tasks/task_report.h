// The downstream tasks in HTML (docs/tasks.md): one table per task result
// (the object `tracelm tasks eval --json` writes), as a section to put in a
// report or as a page of its own. Self-contained (no scripts, no fetches);
// every name is HTML-escaped; a function of its arguments.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tracelm {

// "<section>...</section>": for each result, a heading (task, records) and a
// table with one row per model (accuracy and the task's other columns).
// Throws std::invalid_argument on an object that is not a task result.
std::string task_report_section(const std::vector<nlohmann::json>& results);
// A whole HTML page holding the section.
std::string task_report_page(const std::vector<nlohmann::json>& results, const std::string& title);

}  // namespace tracelm
