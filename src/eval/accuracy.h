// The paper's instruction-following accuracy (its Figure 4 heatmap): for
// every feasible (num_edges, depth) cell of a grid, N requests with the
// service and latency of a random validation graph; a generated graph is
// accurate when it is valid and has exactly the requested edges and depth.
// Each condition's own success rate (valid, edges, depth, latency) is kept
// beside it. `tracelm eval accuracy` runs the generator over the requests
// of accuracy_requests() and reports tally()'s table.
//
// Contract: accuracy_requests() is deterministic for a seed; a cell (E, D)
// is feasible when D <= E and (D == 1) == (E == 1) (one root call under USER
// makes depth 1; any further call hangs below it, so depth >= 2). tally()
// needs one generated graph per request, in order.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/call_graph.h"
#include "generate/assembler.h"
#include "report/gnuplot.h"

namespace tracelm {

struct AccuracyCell {
  int64_t n = 0;        // requests
  int64_t valid = 0;    // complete and valid graphs
  int64_t edges = 0;    // valid, with the requested number of edges
  int64_t depth = 0;    // valid, with the requested depth
  int64_t latency = 0;  // valid, with the requested latency
  int64_t all = 0;      // valid, edges and depth: the paper's accuracy
};

struct AccuracyGrid {
  int64_t max_edges = 30, max_depth = 6;
  std::vector<GenerateRequest> requests;
  std::vector<std::pair<int64_t, int64_t>> cell_of;  // (edges, depth) of each request
};

// n requests per feasible cell of 1..max_edges x 1..max_depth; service and
// latency from graphs of `prompts` drawn with the seed. prompts must not be
// empty.
AccuracyGrid accuracy_requests(const std::vector<CallGraph>& prompts, int64_t max_edges,
                               int64_t max_depth, int64_t n, uint64_t seed);

struct AccuracyTable {
  double temperature = 0;
  int64_t max_edges = 0, max_depth = 0;
  std::map<std::pair<int64_t, int64_t>, AccuracyCell> cells;  // by (edges, depth)
  AccuracyCell total;
};

// Scores one generated graph against its request.
AccuracyCell score_request(const GenerateRequest& r, const GeneratedGraph& g);
AccuracyTable tally(const AccuracyGrid& grid, const std::vector<GeneratedGraph>& out,
                    double temperature);

// "temperature,num_edges,depth,samples,valid,edges_ok,depth_ok,latency_ok,all_ok\n"
extern const char* const kAccuracyCsvHeader;
std::string accuracy_csv_rows(const AccuracyTable& t);
// One line: "T=0.8: 600 graphs, accuracy (valid + edges + depth) 93.2%; ...".
std::string accuracy_summary(const AccuracyTable& t);
// The accuracy matrix (rows: depth 1..D, columns: edges 1..E; NaN where no
// request), as gnuplot's `matrix` data.
std::string accuracy_matrix(const AccuracyTable& t);
GnuplotPlot accuracy_heatmap(const AccuracyTable& t, const std::string& title);

}  // namespace tracelm
