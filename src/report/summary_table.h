// The summary table of a realism evaluation: one row per metric, a "real"
// column, then one column per synthetic set. One definition serves the text
// table of `tracelm evaluate` and the HTML report (html_report.h), so both
// always show the same rows with the same formatting.
//
// Contract:
//  - summary_table() is pure: reports in, strings out. Cells are already
//    formatted ("97.3%", "0.125", "n/a", "" for "not meaningful"). Row labels
//    are plain text (not escaped); an indent of 1 marks a row that details
//    the one above it.
//  - A calls-only report (RealismReport::calls_only, eval/call_rows.h) shows
//    n/a on the rows about whole graphs, and a note says why.
//  - All reports are expected to be computed against the same real set and
//    with the same options (the heavy-hitter Ks and the EMD rows are taken
//    from the first report). An empty list gives the rows that need no report.
#pragma once

#include <string>
#include <vector>

#include "eval/metrics.h"

namespace tracelm {

struct SummaryRow {
  std::string label;
  int indent = 0;                  // 1: detail of the row above
  std::vector<std::string> cells;  // "real", then one per report
};

struct SummaryTable {
  std::vector<std::string> head;  // "metric", "real", then the report names
  std::vector<SummaryRow> rows;
  std::vector<std::string> notes;  // footnotes (K capped, KL/EMD definitions)
};

SummaryTable summary_table(const std::vector<RealismReport>& reports, const StructureSummary& real);

// The table as aligned text (first column left-aligned, the others right-
// aligned, two spaces apart, indent as two spaces), then the notes, each line
// ending in '\n'.
std::string summary_text(const SummaryTable& t);

}  // namespace tracelm
