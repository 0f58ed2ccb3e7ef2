// Stage logic that used to live in CLI callbacks, tested on its own: the
// accuracy heatmap's requests and scoring (eval/accuracy.h), the one graph
// writer (export/graph_writer.h) and the typed stats.json
// (stats/trained_stats.h).
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "corpus/graph_source.h"
#include "eval/accuracy.h"
#include "export/graph_writer.h"
#include "io/input_error.h"
#include "stats/trained_stats.h"
#include "test_util.h"

namespace tracelm {
namespace {

Edge edge(const char* id, const char* caller, const char* callee, CallType t, int64_t s,
          int64_t f) {
  return Edge{*RpcId::parse(id), caller, callee, t, s, f};
}

// 0 USER->A http [0,10]; 0.1 A->B rpc [1,5]; 0.2 A->B rpc [2,6]; 0.2.1 B->C db [3,4]
CallGraph deep(const char* service = "S_1") {
  CallGraph g;
  g.service = service;
  g.trace_id = "T_1";
  g.edges = {
      edge("0", "USER", "A", CallType::kHttp, 0, 10), edge("0.1", "A", "B", CallType::kRpc, 1, 5),
      edge("0.2", "A", "B", CallType::kRpc, 2, 6), edge("0.2.1", "B", "C", CallType::kDb, 3, 4)};
  g.canonicalize();
  return g;
}

TEST(Accuracy, RequestsCoverTheFeasibleCellsOnly) {
  std::vector<CallGraph> prompts = {deep("S_1"), deep("S_2")};
  AccuracyGrid grid = accuracy_requests(prompts, 4, 3, 2, 7);
  // Feasible (E, D): (1,1) (2,2) (3,2) (3,3) (4,2) (4,3): 6 cells x 2.
  ASSERT_EQ(grid.requests.size(), 12u);
  for (size_t i = 0; i < grid.requests.size(); ++i) {
    auto [e, d] = grid.cell_of[i];
    EXPECT_EQ(*grid.requests[i].num_edges, e);
    EXPECT_EQ(*grid.requests[i].depth, d);
    EXPECT_TRUE(d <= e && (d == 1) == (e == 1));
    EXPECT_EQ(*grid.requests[i].latency, 10);
  }
  AccuracyGrid again = accuracy_requests(prompts, 4, 3, 2, 7);
  for (size_t i = 0; i < grid.requests.size(); ++i)
    EXPECT_EQ(*grid.requests[i].service, *again.requests[i].service);
}

TEST(Accuracy, ScoresEachConditionAndTalliesTheCells) {
  GenerateRequest r;
  r.num_edges = 4;
  r.depth = 3;
  r.latency = 10;
  GeneratedGraph ok{deep(), true, 3, 3, 40, ""};
  AccuracyCell c = score_request(r, ok);
  EXPECT_EQ(c.valid + c.edges + c.depth + c.latency + c.all, 5);
  r.depth = 2;  // wrong depth: not accurate, edges and latency still right
  c = score_request(r, ok);
  EXPECT_EQ(c.all, 0);
  EXPECT_EQ(c.edges, 1);
  EXPECT_EQ(c.depth, 0);
  GeneratedGraph broken = ok;
  broken.complete = false;  // incomplete: nothing counts
  c = score_request(r, broken);
  EXPECT_EQ(c.n, 1);
  EXPECT_EQ(c.valid + c.edges + c.all, 0);

  AccuracyGrid grid;
  grid.max_edges = 4;
  grid.max_depth = 3;
  GenerateRequest a = r;
  a.depth = 3;
  grid.requests = {a, a, r};
  grid.cell_of = {{4, 3}, {4, 3}, {4, 2}};
  AccuracyTable t = tally(grid, {ok, broken, ok}, 0.8);
  EXPECT_EQ(t.total.n, 3);
  EXPECT_EQ(t.total.all, 1);
  auto cell = [&](int64_t e, int64_t d) { return t.cells[{e, d}]; };
  EXPECT_EQ(cell(4, 3).all, 1);
  EXPECT_EQ(cell(4, 3).n, 2);
  EXPECT_EQ(cell(4, 2).all, 0);
  // Rows are depths, columns edges; cells without requests are NaN.
  EXPECT_EQ(accuracy_matrix(t), "NaN NaN NaN NaN\nNaN NaN NaN 0.0000\nNaN NaN NaN 0.5000\n");
  EXPECT_EQ(accuracy_csv_rows(t), "0.8,4,2,1,1,1,0,1,0\n0.8,4,3,2,1,1,1,1,1\n");
  EXPECT_NE(accuracy_summary(t).find("accuracy (valid + edges + depth) 33.3%"), std::string::npos);
}

TEST(GraphWriter, ChoosesTheFormatByExtensionAndReadsBack) {
  EXPECT_EQ(format_for_path("a.jsonl"), GraphFormat::kCorpusJsonl);
  EXPECT_EQ(format_for_path("a.otlp.jsonl"), GraphFormat::kOtlpJsonl);
  EXPECT_EQ(format_for_path("a.otlp.json"), GraphFormat::kOtlp);
  EXPECT_EQ(format_for_path("a.jaeger.json"), GraphFormat::kJaeger);
  EXPECT_EQ(format_for_path("dir/a.csv"), GraphFormat::kAlibabaCsv);
  EXPECT_THROW(format_for_path("a.txt"), std::invalid_argument);
  EXPECT_THROW(format_for_name("csv"), std::invalid_argument);
  EXPECT_EQ(format_for_name("otlp-jsonl"), GraphFormat::kOtlpJsonl);
  // A .csv holds Alibaba rows that the graph reader turns back into the graphs.
  testing::TempDir dir;
  std::vector<CallGraph> graphs = {deep("S_1"), deep("S_2")};
  graphs[1].trace_id = "T_2";
  for (const char* name : {"g.csv", "g.jsonl"}) {
    EXPECT_EQ(write_graphs(dir.file(name), graphs), 2u);
    std::vector<CallGraph> back;
    for_each_graph(dir.file(name), CsvMode::kClean,
                   [&](CallGraph&& g) { back.push_back(std::move(g)); });
    ASSERT_EQ(back.size(), 2u) << name;
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(back[i].service, graphs[i].service) << name;
      EXPECT_EQ(back[i].edges, graphs[i].edges) << name;
    }
  }
  // Unclosed: no file.
  {
    GraphWriter w(dir.file("none.jsonl"));
    w.write(graphs[0]);
  }
  EXPECT_FALSE(testing::exists(dir.file("none.jsonl")));
}

// A graph whose root call A makes `width` calls: D first, then B.
CallGraph wide_layer(size_t width) {
  CallGraph g;
  g.service = "S_1";
  g.trace_id = "T_1";
  g.edges = {edge("0", "USER", "A", CallType::kHttp, 0, 10)};
  for (size_t i = 1; i <= width; ++i)
    g.edges.push_back(
        edge(("0." + std::to_string(i)).c_str(), "A", i == 1 ? "D" : "B", CallType::kRpc, 1, 2));
  g.canonicalize();
  return g;
}

TEST(TrainedStats, KeepsWideLayersForSplitItems) {
  using Seqs = std::vector<std::vector<std::string>>;
  auto seq = [](size_t width) {
    std::vector<std::string> q(width, "B");
    q[0] = "D";
    return q;
  };
  // A's layers of 3, 20 and 30 calls, wide ones included; none of 1,001.
  TrainedStats t = TrainedStats::of({wide_layer(3), wide_layer(20), wide_layer(30),
                                     wide_layer(CorpusPriors::kMaxWideLayerEdges + 1)});
  ASSERT_EQ(t.priors.layers.size(), 1u);
  EXPECT_EQ(t.priors.layers[0].second, (Seqs{seq(3), seq(20), seq(30)}));  // sorted
  testing::TempDir dir;
  t.save(dir.file("stats.json"));
  EXPECT_EQ(TrainedStats::load(dir.file("stats.json")).priors.layers, t.priors.layers);
  // Narrow and wide layers are counted apart: too many narrow ones drop only those.
  std::vector<CallGraph> varied{wide_layer(20)};
  for (size_t i = 0; i <= CorpusPriors::kMaxLayersPerCaller; ++i) {
    CallGraph g = wide_layer(2);
    g.edges[2].callee = "C_" + std::to_string(i);
    varied.push_back(g);
  }
  EXPECT_EQ(TrainedStats::of(varied).priors.layers[0].second, (Seqs{seq(20)}));
  // split_item_names: the calls at the item's place in the split of its width,
  // else in the one `pick` chooses; the 3-call layer is never one.
  using Names = std::vector<std::string>;
  const Seqs& a = t.priors.layers[0].second;
  for (uint64_t pick : {0, 1, 2}) {
    EXPECT_EQ(split_item_names(a, 20, 0, 4, pick), (Names{"D", "B", "B", "B"}));
    EXPECT_EQ(split_item_names(a, 20, 16, 4, pick), (Names{"B", "B", "B", "B"}));
    EXPECT_EQ(split_item_names(a, 25, 0, 2, pick), (Names{"D", "B"}));  // no 25: 20 or 30
  }
  // Past its end, a layer repeats its calls after the first: D E F then E F E F.
  Seqs def{{"D", "E", "F", "E", "F", "E", "F", "E", "F", "E", "F", "E", "F", "E", "F", "E", "F"}};
  EXPECT_EQ(split_item_names(def, 40, 15, 5, 0), (Names{"E", "F", "E", "F", "E"}));
  EXPECT_EQ(split_item_names(def, 40, 36, 4, 0), (Names{"F", "E", "F", "E"}));
  // Two layers of the split's width: the pick chooses, for every item alike.
  Seqs two{seq(20), std::vector<std::string>(20, "Z")};
  EXPECT_EQ(split_item_names(two, 20, 5, 2, 0), (Names{"B", "B"}));
  EXPECT_EQ(split_item_names(two, 20, 5, 2, 1), (Names{"Z", "Z"}));
  EXPECT_EQ(split_item_names(two, 20, 0, 2, 3), (Names{"Z", "Z"}));
  EXPECT_TRUE(split_item_names({seq(3)}, 3, 0, 2, 0).empty());
}

// layers_holding: the layers whose callees' caps (most calls below one call)
// add up to the calls the unit must put below them; C was never called with
// calls below it (no cap: 0).
TEST(TrainedStats, LayersHoldingKeepTheLayersThatCanHoldTheCalls) {
  using Seqs = std::vector<std::vector<std::string>>;
  const std::vector<std::pair<std::string, SubtreeSize>> caps = {{"A", {5, 2}}, {"B", {1, 0}}};
  const Seqs seqs = {{"A", "B"}, {"B", "B"}, {"C", "C"}, {"A"}, {"A", "C", "B"}};
  EXPECT_EQ(layers_holding(seqs, 2, 6, caps), (Seqs{{"A", "B"}}));
  EXPECT_EQ(layers_holding(seqs, 2, 2, caps), (Seqs{{"A", "B"}, {"B", "B"}}));
  EXPECT_EQ(layers_holding(seqs, 2, 0, caps), (Seqs{{"A", "B"}, {"B", "B"}, {"C", "C"}}));
  EXPECT_EQ(layers_holding(seqs, 1, 5, caps), (Seqs{{"A"}}));
  EXPECT_TRUE(layers_holding(seqs, 3, 7, caps).empty());
  // Caps from a file written elsewhere may be anything: no overflow.
  const std::vector<std::pair<std::string, SubtreeSize>> huge = {{"A", {INT64_MAX, 0}},
                                                                 {"B", {-3, 0}}};
  EXPECT_EQ(layers_holding(seqs, 2, INT64_MAX, huge), (Seqs{{"A", "B"}}));
}

TEST(TrainedStats, RoundTripsAndReadsTheEarlierLayout) {
  std::vector<CallGraph> graphs;
  for (int i = 0; i < 1200; ++i) graphs.push_back(deep(("S_" + std::to_string(i)).c_str()));
  graphs.push_back(deep("S_7"));
  TrainedStats t = TrainedStats::of(graphs);
  ASSERT_EQ(t.priors.services.size(), 1200u);  // no 1,000-service cap
  EXPECT_EQ(t.priors.services[0], (std::pair<std::string, uint64_t>{"S_7", 2}));
  EXPECT_EQ(t.priors.num_edges, (std::vector<std::pair<int64_t, uint64_t>>{{4, 1201}}));
  testing::TempDir dir;
  t.save(dir.file("stats.json"));
  TrainedStats back = TrainedStats::load(dir.file("stats.json"));
  EXPECT_EQ(back.priors.services, t.priors.services);
  EXPECT_EQ(back.priors.num_edges, t.priors.num_edges);
  ASSERT_EQ(t.priors.roots.size(), 1201u);  // every graph's root conditions
  EXPECT_EQ(t.priors.roots[7],
            (CorpusPriors::Root{"S_7", 4, graphs[7].depth(), graphs[7].latency()}));
  EXPECT_EQ(back.priors.roots, t.priors.roots);
  // A: 3 calls below it, at most 1 below one of its calls (0.2 -> 0.2.1), one level below
  // its calls, 2 calls, one of the two making calls, never fewer than 3 calls below it,
  // over 1,201 calls; B: 1, 0, 0, 1, none, and a leaf at 0.1 (least 0), over 2,402 calls.
  EXPECT_EQ(t.priors.subtree_max,
            (std::vector<std::pair<std::string, SubtreeSize>>{{"A", {3, 1, 1, 2, 0.5, 3, 1201}},
                                                              {"B", {1, 0, 0, 1, 0.0, 0, 2402}}}));
  EXPECT_EQ(back.priors.subtree_max, t.priors.subtree_max);
  // Layers: A calls (B, B), B calls (C).
  using Layers = std::vector<std::pair<std::string, std::vector<std::vector<std::string>>>>;
  EXPECT_EQ(t.priors.layers, (Layers{{"A", {{"B", "B"}}}, {"B", {{"C"}}}}));
  EXPECT_EQ(back.priors.layers, t.priors.layers);
  // Layer counts: per node, per its caller, (layer, calls under the call, calls): USER -> A
  // with 3 calls under it, 1,201 times; A -> B twice per graph, but only the first call to B
  // (0.1, 1 call under it) makes a layer.
  using Counts = std::vector<std::pair<std::string, LayerCounts>>;
  EXPECT_EQ(t.priors.layer_counts,
            (Counts{{"A", {{"USER", {{0, 3, 1201}}}}}, {"B", {{"A", {{0, 1, 1201}}}}}}));
  EXPECT_EQ(back.priors.layer_counts, t.priors.layer_counts);
  // A caller with more distinct layers than kMaxLayersPerCaller is left out.
  std::vector<CallGraph> varied(1, deep("S_1"));
  for (size_t i = 0; i <= CorpusPriors::kMaxLayersPerCaller; ++i) {
    CallGraph g = deep("S_1");
    g.edges[3].callee = "C_" + std::to_string(i);  // B -> C_i
    varied.push_back(g);
  }
  EXPECT_EQ(TrainedStats::of(varied).priors.layers, (Layers{{"A", {{"B", "B"}}}}));
  // Entries: per service, the callees of its root calls with their graphs' sizes (A, 4 calls).
  using Entries = std::vector<std::pair<std::string, std::vector<CorpusPriors::Entry>>>;
  ASSERT_EQ(t.priors.entries.size(), 1200u);
  EXPECT_EQ(t.priors.entries[0], (Entries::value_type{"S_0", {{"A", 4, 4}}}));
  EXPECT_EQ(back.priors.entries, t.priors.entries);
  // Durations: each callee's longest call (A 0-10, B 1-5 and 2-6, C 3-4).
  EXPECT_EQ(t.priors.durations,
            (std::vector<std::pair<std::string, int64_t>>{{"A", 10}, {"B", 4}, {"C", 1}}));
  EXPECT_EQ(back.priors.durations, t.priors.durations);
  // Types: per callee, per caller (USER -> A http, A -> B rpc, B -> C db).
  EXPECT_EQ(
      t.priors.types,
      (CallTypes{{"A", {{"USER", 1u << 0}}}, {"B", {{"A", 1u << 1}}}, {"C", {{"B", 1u << 3}}}}));
  EXPECT_EQ(back.priors.types, t.priors.types);
  // Shapes: per callee with calls below it, (calls below, calls it makes, calls to it,
  // levels under its calls): A's calls make a call (1), B's are leaves (0).
  EXPECT_EQ(t.priors.shapes, (CallShapes{{"A", {{3, 2, 1201, 1}}}, {"B", {{1, 1, 1201, 0}}}}));
  EXPECT_EQ(back.priors.shapes, t.priors.shapes);
  // Entry layers: per service, per entry, the entry's layers (A calls B twice).
  ASSERT_EQ(t.priors.entry_layers.size(), 1200u);
  EXPECT_EQ(t.priors.entry_layers[0],
            (EntryLayers::value_type{"S_0", {{"A", Sequences{{"B", "B"}}}}}));
  EXPECT_EQ(back.priors.entry_layers, t.priors.entry_layers);
  CallGraph both = deep("S_1");  // A calls B as rpc and as http; Z calls B as mc
  both.edges[1].type = CallType::kHttp;
  both.edges.push_back(edge("0.3", "A", "Z", CallType::kRpc, 7, 8));
  both.edges.push_back(edge("0.3.1", "Z", "B", CallType::kMc, 7, 8));
  both.canonicalize();
  auto types = TrainedStats::of({both}).priors.types;
  EXPECT_EQ(types_of(types, "A", "B"), (1u << 0) | (1u << 1));
  EXPECT_EQ(types_of(types, "Z", "B"), 1u << 2);
  EXPECT_EQ(types_of(types, "Q", "B"), (1u << 0) | (1u << 1) | (1u << 2));  // any caller's
  EXPECT_EQ(types_of(types, "A", "Y"), 0);                                  // nothing known
  CallGraph other = deep("S_1");  // enters at Z with 2 calls
  other.edges[0].callee = "Z";
  other.edges.resize(2);
  CallGraph wide = deep("S_1");  // enters at Z with 6 calls
  wide.edges[0].callee = "Z";
  wide.edges.push_back(wide.edges[1]);
  wide.edges.push_back(wide.edges[1]);
  Entries two = TrainedStats::of({other, deep("S_1"), wide, deep("S_2")}).priors.entries;
  EXPECT_EQ(two, (Entries{{"S_1", {{"A", 4, 4, 1}, {"Z", 2, 6, 2}}}, {"S_2", {{"A", 4, 4, 1}}}}));
  // entries_for: those whose sizes cover the request's, else the nearest; all when open.
  using Names = std::vector<std::string>;
  EXPECT_EQ(entries_for(two, "S_1", 4), (Names{"A", "Z"}));
  EXPECT_EQ(entries_for(two, "S_1", 5), (Names{"Z"}));
  EXPECT_EQ(entries_for(two, "S_1", 40), (Names{"Z"}));
  EXPECT_EQ(entries_for(two, "S_1", std::nullopt), (Names{"A", "Z"}));
  EXPECT_EQ(entries_for(two, "S_2", 1), (Names{"A"}));
  EXPECT_TRUE(entries_for(two, "S_9", 4).empty());
  // draw_layer: by the counts of the node's caller at the unit's size, else of any caller at
  // that size, else of the caller at any size, else of any. P made X 3 times and Y once with
  // 4 calls under them, and Y 6 times with 9; Q made Z 5 times with 4.
  const Sequences seqs{{"X"}, {"Y"}, {"Z"}};
  const LayerCounts counts{{"P", {{0, 4, 3}, {1, 4, 1}, {1, 9, 6}}}, {"Q", {{2, 4, 5}}}};
  auto drawn_layers = [&](const Sequences& cands, std::string_view parent,
                          std::optional<int64_t> below) {
    std::map<std::string, int> n;
    for (int i = 0; i < 400; ++i)
      if (auto k = draw_layer(cands, seqs, counts, parent, below, (i + 0.5) / 400))
        ++n[cands[*k][0]];
    return n;
  };
  using Drawn = std::map<std::string, int>;
  EXPECT_EQ(drawn_layers({{"X"}, {"Y"}}, "P", 4), (Drawn{{"X", 300}, {"Y", 100}}));
  EXPECT_EQ(drawn_layers({{"X"}, {"Y"}}, "P", 9), (Drawn{{"Y", 400}}));
  EXPECT_EQ(drawn_layers({{"X"}, {"Y"}}, "P", std::nullopt), (Drawn{{"X", 120}, {"Y", 280}}));
  EXPECT_EQ(drawn_layers({{"X"}, {"Y"}}, "P", 7), (Drawn{{"X", 120}, {"Y", 280}}));  // no size 7
  EXPECT_EQ(drawn_layers({{"Z"}, {"X"}}, "Q", 4), (Drawn{{"Z", 400}}));
  // Q made neither X nor Y: any caller's at the size; then any caller's at any size.
  EXPECT_EQ(drawn_layers({{"X"}, {"Y"}}, "Q", 4), (Drawn{{"X", 300}, {"Y", 100}}));
  EXPECT_EQ(drawn_layers({{"X"}, {"Y"}}, "Q", 9), (Drawn{{"Y", 400}}));
  EXPECT_EQ(drawn_layers({{"Y"}, {"Z"}}, "R", 5), (Drawn{{"Y", 233}, {"Z", 167}}));
  EXPECT_EQ(drawn_layers({{"W"}, {"X"}}, "P", 4), (Drawn{{"X", 400}}));  // W: not a layer
  EXPECT_EQ(draw_layer({{"W"}}, seqs, counts, "P", 4, 0.5), std::nullopt);
  EXPECT_EQ(draw_layer({{"X"}}, seqs, {}, "P", 4, 0.5), std::nullopt);  // no counts
  // draw_entry: among entries_for's, by graphs: at 4 calls A (1 graph) or Z (2).
  std::map<std::string, int> drawn;
  for (int i = 0; i < 300; ++i) ++drawn[draw_entry(two, "S_1", 4, (i + 0.5) / 300)];
  EXPECT_EQ(drawn, (std::map<std::string, int>{{"A", 100}, {"Z", 200}}));
  EXPECT_EQ(draw_entry(two, "S_1", 6, 0.01), "Z");  // only Z covers 6
  EXPECT_EQ(draw_entry(two, "S_9", 4, 0.5), "");
  EXPECT_EQ(back.conditions.callees(), (std::vector<std::string>{"A", "B", "C"}));
  // Version 0: the `stats --json` report under "corpus".
  testing::write_file(
      dir.file("old.json"),
      R"({"corpus":{"top_services":[{"service":"S_9","graphs":3}],"num_edges":{"2":1,"10":2}}})");
  TrainedStats old = TrainedStats::load(dir.file("old.json"));
  EXPECT_EQ(old.priors.services, (std::vector<std::pair<std::string, uint64_t>>{{"S_9", 3}}));
  EXPECT_EQ(old.priors.num_edges, (std::vector<std::pair<int64_t, uint64_t>>{{2, 1}, {10, 2}}));
  EXPECT_TRUE(old.priors.roots.empty());
  EXPECT_TRUE(old.priors.subtree_max.empty());  // files before the caps: no caps
  EXPECT_TRUE(old.priors.layers.empty());       // nor known layers
  EXPECT_TRUE(old.priors.entries.empty());      // nor entries
  EXPECT_TRUE(old.priors.durations.empty());    // nor durations
  EXPECT_TRUE(old.priors.shapes.empty());       // nor shapes
  // Session 8's caps: [below, child_below] only; depth and width unknown.
  testing::write_file(dir.file("s8.json"), R"({"services":[],"subtree_max":{"A":[3,1]}})");
  EXPECT_EQ(TrainedStats::load(dir.file("s8.json")).priors.subtree_max,
            (std::vector<std::pair<std::string, SubtreeSize>>{
                {"A", {3, 1, SubtreeSize::kUnknown, SubtreeSize::kUnknown}}}));
  // Session 9's: five numbers, no least.
  testing::write_file(dir.file("s9.json"), R"({"services":[],"subtree_max":{"A":[3,1,1,2,0.5]}})");
  EXPECT_EQ(TrainedStats::load(dir.file("s9.json")).priors.subtree_max,
            (std::vector<std::pair<std::string, SubtreeSize>>{{"A", {3, 1, 1, 2, 0.5, 0, 0}}}));
  testing::write_file(dir.file("bad.json"), R"({"services":[["S_1"]]})");
  EXPECT_THROW(TrainedStats::load(dir.file("bad.json")), InputError);
  testing::write_file(dir.file("bad-layers.json"), R"({"services":[],"layers":{"A":["B"]}})");
  EXPECT_THROW(TrainedStats::load(dir.file("bad-layers.json")), InputError);
  testing::write_file(dir.file("bad-entries.json"),
                      R"({"services":[],"entries":{"S_1":[["A",1]]}})");
  EXPECT_THROW(TrainedStats::load(dir.file("bad-entries.json")), InputError);
  for (const char* bad : {R"({"types":{"B":{"A":["tcp"]}}})", R"({"types":{"B":{"A":"rpc"}}})",
                          R"({"types":{"B":["rpc"]}})", R"({"types":{"B":{"A":[3]}}})"}) {
    testing::write_file(dir.file("bad-types.json"), bad);
    EXPECT_THROW(TrainedStats::load(dir.file("bad-types.json")), InputError) << bad;
  }
  for (const char* bad :
       {R"({"entry_layers":{"S_1":["A"]}})", R"({"entry_layers":{"S_1":{"A":["B"]}}})"}) {
    testing::write_file(dir.file("bad-entry-layers.json"), bad);
    EXPECT_THROW(TrainedStats::load(dir.file("bad-entry-layers.json")), InputError) << bad;
  }
  // Session 15's shapes: three numbers, the depth unknown.
  testing::write_file(dir.file("s15.json"), R"({"services":[],"shapes":{"A":[[3,2,7]]}})");
  EXPECT_EQ(TrainedStats::load(dir.file("s15.json")).priors.shapes,
            (CallShapes{{"A", {{3, 2, 7, CallShape::kUnknown}}}}));
  for (const char* bad : {R"({"shapes":{"A":[[3,2]]}})", R"({"shapes":{"A":[[3,2,-1]]}})",
                          R"({"shapes":{"A":[["3",2,1]]}})", R"({"shapes":{"A":3}})",
                          R"({"shapes":{"A":[[3,2,1,"1"]]}})"}) {
    testing::write_file(dir.file("bad-shapes.json"), bad);
    EXPECT_THROW(TrainedStats::load(dir.file("bad-shapes.json")), InputError) << bad;
  }
  // Session 16's files have no layer counts (the model then picks a layer);
  // a count of no layer of the node, or malformed, is an error.
  testing::write_file(dir.file("s16.json"), R"({"layers":{"A":[["B"],["C"]]}})");
  EXPECT_TRUE(TrainedStats::load(dir.file("s16.json")).priors.layer_counts.empty());
  testing::write_file(
      dir.file("counts.json"),
      R"({"layers":{"A":[["B"],["C"]]},"layer_counts":{"A":{"USER":[[1,3,2],[0,1,4]]}}})");
  EXPECT_EQ(TrainedStats::load(dir.file("counts.json")).priors.layer_counts,
            (std::vector<std::pair<std::string, LayerCounts>>{
                {"A", {{"USER", {{1, 3, 2}, {0, 1, 4}}}}}}));
  for (const char* bad : {R"({"layers":{"A":[["B"]]},"layer_counts":{"A":{"USER":[[1,1,2]]}}})",
                          R"({"layers":{"A":[["B"]]},"layer_counts":{"Z":{"USER":[[0,1,2]]}}})",
                          R"({"layers":{"A":[["B"]]},"layer_counts":{"A":[[0,1,2]]}})",
                          R"({"layers":{"A":[["B"]]},"layer_counts":{"A":{"USER":[[0,-1,2]]}}})",
                          R"({"layers":{"A":[["B"]]},"layer_counts":{"A":{"USER":[[0,1]]}}})",
                          R"({"layers":{"A":[["B"]]},"layer_counts":{"A":{"USER":[[0,1,-2]]}}})"}) {
    testing::write_file(dir.file("bad-counts.json"), bad);
    try {
      TrainedStats::load(dir.file("bad-counts.json"));
      ADD_FAILURE() << bad;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("count"), std::string::npos) << e.what();
    }
  }
  // A callee without callers (fuzz_stats): left out, as to_json leaves it out.
  testing::write_file(dir.file("empty-types.json"), R"({"types":{"A":{},"B":{"A":["rpc"]}}})");
  EXPECT_EQ(TrainedStats::load(dir.file("empty-types.json")).priors.types,
            (CallTypes{{"B", {{"A", 1u << 1}}}}));
  // A count beyond any integer (fuzz_stats): an InputError, not undefined behaviour.
  testing::write_file(dir.file("huge.json"), R"({"services":[["S_1",2e96]]})");
  EXPECT_THROW(TrainedStats::load(dir.file("huge.json")), InputError);
}

}  // namespace
}  // namespace tracelm
