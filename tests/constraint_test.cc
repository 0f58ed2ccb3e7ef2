// The layer automaton of constrained decoding (generate/layer_constraint.h),
// driven without a model: random walks through it, assembled into graphs by
// the generator's own assembler, must give valid graphs that meet every
// request; the automaton must accept the real corpus's layers; and it must
// reject the classic mistakes.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <regex>
#include <sstream>

#include <set>

#include "core/validate.h"
#include "encode/instruction.h"
#include "encode/recursive.h"
#include "generate/assembler.h"
#include "generate/instruction_constraint.h"
#include "generate/layer_constraint.h"
#include "ingest/ingest.h"
#include "sample/synthetic_raw.h"
#include "test_util.h"

namespace tracelm {
namespace {

// A vocabulary like a trained tokenizer's: single bytes plus multi-byte
// pieces that span fields (structure strings, digits runs, phrase ends).
std::vector<std::string> vocabulary() {
  std::vector<std::string> v;
  for (int b = 1; b < 128; ++b) v.emplace_back(1, static_cast<char>(b));
  for (const char* s : {"<layer>\n",
                        "<split>\n",
                        "<edges>\n",
                        "</edges>\n",
                        "</layer>",
                        "</layer>\n",
                        "</split>\n",
                        "<subgraph of edge_id ",
                        "<subgraph of edge_id 0>",
                        "</subgraph>\n",
                        "edge_id is ",
                        "destination is ",
                        "type is ",
                        "communication starts at ",
                        "communication finishes at ",
                        " milliseconds",
                        ",",
                        ")\n",
                        "MS_",
                        "rpc,",
                        "http",
                        "10",
                        "00",
                        "1/",
                        "0/",
                        "/latency:",
                        "/num_edges:",
                        "id:",
                        "S_1/",
                        "0>",
                        ">id:",
                        "USER"})
    v.emplace_back(s);
  return v;
}

// Generates one unit body through the automaton: draws a vocabulary entry
// uniformly; when the automaton rejects it, draws among the accepted ones
// (what the generator does with a model's distribution).
std::string walk_unit(UnitConstraint& con, const std::vector<std::string>& vocab, Rng& rng,
                      int64_t* masked) {
  std::string text;
  while (!con.done()) {
    const std::string& t = vocab[rng.next() % vocab.size()];
    if (con.accepts(t)) {
      con.feed(t);
      text += t;
      continue;
    }
    ++*masked;
    std::bitset<256> first = con.next_bytes();
    std::vector<const std::string*> ok;
    for (const std::string& s : vocab)
      if (first[static_cast<unsigned char>(s[0])] && con.accepts(s)) ok.push_back(&s);
    if (ok.empty()) {
      ADD_FAILURE() << "dead end after:\n" << text;
      return text;
    }
    const std::string& pick = *ok[rng.next() % ok.size()];
    EXPECT_TRUE(con.feed(pick));
    text += pick;
  }
  return text;
}

std::vector<GeneratedGraph> walk(
    const std::vector<GenerateRequest>& reqs, uint64_t seed, const ConstraintLimits& lim = {},
    std::shared_ptr<const std::vector<std::string>> names = nullptr, bool instruction = false,
    std::vector<std::string>* answers = nullptr, bool fixed_order = false,
    std::vector<std::string>* units = nullptr,
    std::shared_ptr<const std::vector<std::string>> callers = nullptr,
    std::shared_ptr<const std::vector<std::pair<std::string, SubtreeSize>>> caps = nullptr,
    std::shared_ptr<const std::vector<std::pair<std::string, int64_t>>> durations = nullptr,
    std::shared_ptr<const CallShapes> shapes = nullptr) {
  std::vector<std::string> vocab = vocabulary();
  if (instruction)
    for (const char* s : {"Subgraph constraints:\n", "num_", " = ", "finish generation", "now, ",
                          "remaining_depth should be", "generate subgraphs of edge:", "edge_id:"})
      vocab.emplace_back(s);
  GraphAssembler as(reqs.size(), 0, 100000, instruction);
  Rng rng(seed);
  CorpusPriors priors;  // no size distribution: open sizes stay open
  priors.services = {{"S_1", 3}, {"S_22", 1}};
  for (size_t i = 0; i < reqs.size(); ++i)
    as.add_root(i, root_conditions(reqs[i], priors, rng), reqs[i].call);
  int64_t masked = 0;
  while (!as.empty()) {
    LayerJob j = as.pop();
    LayerSpec spec;
    std::string why;
    EXPECT_TRUE(LayerSpec::from_attributes(j.announced, &spec, &why)) << why << "\n" << j.prompt;
    spec.require = j.require;
    spec.names = names;
    spec.callers = callers;
    spec.subtree_caps = caps;
    spec.durations = durations;
    spec.shapes = shapes;
    spec.draw_seed = mix_seed(seed, j.key);
    spec.fixed_order = fixed_order;
    EXPECT_TRUE(spec.check_require(&why)) << why << "\n" << j.prompt;
    std::unique_ptr<UnitConstraint> con;
    if (instruction) {
      j.prompt = instruction_prompt(j, reqs[j.graph]);
      con = std::make_unique<InstructionConstraint>(spec, lim);
    } else {
      con = std::make_unique<LayerConstraint>(spec, lim);
    }
    std::string text = walk_unit(*con, vocab, rng, &masked);
    if (units) units->push_back(text);
    if (answers)  // without the optional dummy-prefix space
      answers->push_back(j.prompt + (text.starts_with(' ') ? text.substr(1) : text));
    as.finish(std::move(j), std::move(text));
  }
  return as.take();
}

// Feasible (edges, depth) cells from 1 to 40 edges (40: a split root child),
// half of them with a latency.
std::vector<GenerateRequest> request_grid() {
  std::vector<GenerateRequest> reqs;
  for (int64_t e : {1, 2, 3, 5, 8, 13, 20, 40})
    for (int64_t d : {1, 2, 3, 4, 6}) {
      if (d > e || (d == 1 && e > 1)) continue;
      GenerateRequest r;
      r.num_edges = e;
      r.depth = d;
      if (e % 2 == 0) r.latency = 7 * e;
      reqs.push_back(r);
    }
  return reqs;
}

TEST(LayerConstraint, RandomWalksGiveValidGraphsThatMeetTheRequest) {
  std::vector<GenerateRequest> reqs = request_grid();
  GenerateRequest open;  // nothing asked
  reqs.push_back(open);
  GenerateRequest only_depth;
  only_depth.depth = 4;
  reqs.push_back(only_depth);
  GenerateRequest only_edges;
  only_edges.num_edges = 31;
  reqs.push_back(only_edges);
  ConstraintLimits lim;
  lim.max_edges = 60;
  for (uint64_t seed : {1, 2, 3}) {
    std::vector<GeneratedGraph> gs = walk(reqs, seed, lim);
    ASSERT_EQ(gs.size(), reqs.size());
    for (size_t i = 0; i < gs.size(); ++i) {
      const GeneratedGraph& g = gs[i];
      ASSERT_TRUE(g.complete) << g.error;
      std::vector<Violation> vs = validate(g.graph);
      EXPECT_TRUE(is_valid(vs, /*strict=*/true))
          << "request " << i << ": " << (vs.empty() ? "" : vs[0].detail);
      if (reqs[i].num_edges)
        EXPECT_EQ(static_cast<int64_t>(g.graph.edges.size()), *reqs[i].num_edges) << i;
      else
        EXPECT_LE(static_cast<int64_t>(g.graph.edges.size()), lim.max_edges);
      if (reqs[i].depth) EXPECT_EQ(g.graph.depth(), *reqs[i].depth) << i;
      if (reqs[i].latency) EXPECT_EQ(g.graph.latency(), *reqs[i].latency) << i;
    }
  }
}

// LayerSpec::fixed_order: every edge's phrases in one order, and
// the walks still complete every request with valid graphs.
// Generates every job of `reqs` with a decoding stream seeded, as the
// generator seeds it, from the graph, the job's tree key and its attempt;
// takes the pending jobs in waves (as a batch does) and finishes each wave
// forwards or backwards.
std::vector<GeneratedGraph> walk_in_waves(const std::vector<GenerateRequest>& reqs, uint64_t seed,
                                          bool backwards) {
  std::vector<std::string> vocab = vocabulary();
  GraphAssembler as(reqs.size(), 0, 100000);
  CorpusPriors priors;
  priors.services = {{"S_1", 3}, {"S_22", 1}};
  for (size_t i = 0; i < reqs.size(); ++i) {
    Rng rng(mix_seed(seed, i));
    as.add_root(i, root_conditions(reqs[i], priors, rng), reqs[i].call);
  }
  ConstraintLimits lim;
  lim.max_edges = 60;
  int64_t masked = 0;
  while (!as.empty()) {
    std::vector<LayerJob> wave;
    while (!as.empty()) wave.push_back(as.pop());
    if (backwards) std::reverse(wave.begin(), wave.end());
    for (LayerJob& j : wave) {
      LayerSpec spec;
      std::string why;
      EXPECT_TRUE(LayerSpec::from_attributes(j.announced, &spec, &why)) << why;
      LayerConstraint con(spec, lim);
      Rng rng(mix_seed(mix_seed(seed, j.graph), mix_seed(j.key, j.attempt)));
      std::string text = walk_unit(con, vocab, rng, &masked);
      as.finish(std::move(j), std::move(text));
    }
  }
  return as.take();
}

TEST(GraphAssembler, SeedKeysDoNotDependOnTheOrderInWhichLayersFinish) {
  std::vector<GenerateRequest> reqs = request_grid();
  std::vector<GeneratedGraph> fwd = walk_in_waves(reqs, 5, false);
  std::vector<GeneratedGraph> bwd = walk_in_waves(reqs, 5, true);
  ASSERT_EQ(fwd.size(), bwd.size());
  size_t deep = 0;
  for (size_t i = 0; i < fwd.size(); ++i) {
    ASSERT_TRUE(fwd[i].complete) << fwd[i].error;
    EXPECT_EQ(fwd[i].layers, bwd[i].layers) << "request " << i;
    EXPECT_TRUE(fwd[i].graph.edges == bwd[i].graph.edges) << "request " << i;
    deep += fwd[i].layers >= 3;
  }
  EXPECT_GE(deep, 10u);  // enough graphs where sibling layers could swap order
}

TEST(LayerConstraint, FixedOrderWritesPhrasesInOneOrder) {
  std::vector<GenerateRequest> reqs = request_grid();
  std::vector<std::string> units;
  std::vector<GeneratedGraph> gs = walk(reqs, 7, {}, nullptr, false, nullptr, true, &units);
  for (size_t i = 0; i < gs.size(); ++i) {
    ASSERT_TRUE(gs[i].complete) << gs[i].error;
    EXPECT_TRUE(is_valid(validate(gs[i].graph), /*strict=*/true)) << i;
  }
  const std::regex edge(
      R"(\(edge_id is \d+,destination is [\w.-]+,type is \w+,communication starts at \d+ )"
      R"(milliseconds,communication finishes at \d+ milliseconds\))");
  int edges = 0;
  for (const std::string& u : units) {
    std::istringstream in(u);
    for (std::string line; std::getline(in, line);)
      if (line.starts_with("(")) {
        EXPECT_TRUE(std::regex_match(line, edge)) << line;
        ++edges;
      }
  }
  EXPECT_GT(edges, 20);
  // The same walk without a fixed order writes other orders too.
  units.clear();
  walk(reqs, 7, {}, nullptr, false, nullptr, false, &units);
  int other = 0;
  for (const std::string& u : units)
    other += u.find("(edge_id is") == std::string::npos && u.find("(") != std::string::npos;
  EXPECT_GT(other, 0);
}

// --rare-call: the requested call is in every graph, whatever the request's
// size and depth (the constraint forces it when the walk does not write it),
// and the graphs stay valid and meet the rest of the request.
TEST(LayerConstraint, RandomWalksContainTheRequestedCall) {
  std::string err;
  std::vector<CallRequest> calls = {*CallRequest::parse("MS_77,MS_5,db", &err),
                                    *CallRequest::parse("USER,MS_9,http", &err),
                                    *CallRequest::parse("MS_3,MS_3", &err)};
  std::vector<GenerateRequest> reqs;
  for (const CallRequest& c : calls) {
    for (int64_t e : {1, 2, 3, 6, 13, 20, 40})
      for (int64_t d : {1, 2, 3, 5}) {
        if (d > e || (d == 1 && e > 1)) continue;
        if (c.caller != kUserNode && d < 2) continue;
        GenerateRequest r;
        r.num_edges = e;
        r.depth = d;
        r.call = c;
        reqs.push_back(r);
      }
    GenerateRequest open;
    open.call = c;
    reqs.push_back(open);
  }
  ConstraintLimits lim;
  lim.max_edges = 60;
  for (uint64_t seed : {1, 2}) {
    std::vector<GeneratedGraph> gs = walk(reqs, seed, lim);
    for (size_t i = 0; i < gs.size(); ++i) {
      const GeneratedGraph& g = gs[i];
      ASSERT_TRUE(g.complete) << i << ": " << g.error;
      EXPECT_TRUE(is_valid(validate(g.graph), /*strict=*/true)) << i;
      EXPECT_TRUE(has_call(g.graph, *reqs[i].call))
          << i << ": no " << reqs[i].call->caller << " -> " << reqs[i].call->callee;
      if (reqs[i].num_edges)
        EXPECT_EQ(static_cast<int64_t>(g.graph.edges.size()), *reqs[i].num_edges);
      if (reqs[i].depth) EXPECT_EQ(g.graph.depth(), *reqs[i].depth) << i;
    }
  }
}

// With a name list, every destination is one of the names (prefixes of
// each other included: MS_1 and MS_12), except a required call's callee.
TEST(LayerConstraint, KnownNamesOnly) {
  auto names = std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"MS_1", "MS_12", "MS_2", "UNKNOWN_X", "db-main"});
  std::vector<GenerateRequest> reqs;
  for (int64_t e : {1, 4, 9, 20}) {
    GenerateRequest r;
    r.num_edges = e;
    reqs.push_back(r);
  }
  std::string err;
  GenerateRequest rc;
  rc.num_edges = 6;
  rc.call = *CallRequest::parse("MS_2,MS_99,rpc", &err);
  reqs.push_back(rc);
  std::set<std::string> seen;
  for (const GeneratedGraph& g : walk(reqs, 7, {}, names)) {
    ASSERT_TRUE(g.complete) << g.error;
    EXPECT_TRUE(is_valid(validate(g.graph), true));
    for (const Edge& e : g.graph.edges) {
      seen.insert(e.callee);
      if (e.callee != "MS_99")
        EXPECT_TRUE(std::binary_search(names->begin(), names->end(), e.callee)) << e.callee;
    }
  }
  EXPECT_GE(seen.size(), 4u);  // the walk reaches several names, prefixes included
  EXPECT_TRUE(seen.count("MS_99"));
}

// With callers (LayerSpec::callers): random walks never give a non-caller
// (here the database) calls of its own, and every request still completes;
// without them, the same walks do.
TEST(LayerConstraint, SubgraphsOnlyUnderCallers) {
  auto names = std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"MS_1", "MS_12", "MS_2", "db-main"});
  auto callers =
      std::make_shared<const std::vector<std::string>>(std::vector<std::string>{"MS_1", "MS_2"});
  std::vector<GenerateRequest> reqs;
  for (int64_t e : {2, 4, 9, 20, 30})
    for (int64_t d : {2, 3, 5}) {
      if (d > e) continue;
      GenerateRequest r;
      r.num_edges = e;
      r.depth = d;
      reqs.push_back(r);
    }
  auto count = [&](const std::vector<GeneratedGraph>& gs, std::set<std::string>* parents) {
    int64_t bad = 0;
    for (const GeneratedGraph& g : gs) {
      EXPECT_TRUE(g.complete) << g.error;
      EXPECT_TRUE(is_valid(validate(g.graph), true));
      for (const Edge& e : g.graph.edges) {
        parents->insert(e.caller);
        bad +=
            e.caller != "USER" && !std::binary_search(callers->begin(), callers->end(), e.caller);
      }
    }
    return bad;
  };
  std::set<std::string> with, without;
  int64_t bad_without = 0;
  for (uint64_t seed : {3, 4, 5}) {
    EXPECT_EQ(count(walk(reqs, seed, {}, names, false, nullptr, false, nullptr, callers), &with), 0)
        << "seed " << seed;
    bad_without += count(walk(reqs, seed, {}, names), &without);
  }
  EXPECT_GT(bad_without, 0) << "the walks never needed the rule";
  EXPECT_TRUE(with.count("MS_1") && with.count("MS_2")) << "callers used";
}

// Destinations MS_1, MS_12, MS_2 and db-main, of which MS_1 and MS_2 call
// others (the random walks of the subtree caps' tests).
std::shared_ptr<const std::vector<std::string>> caps_test_names() {
  return std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"MS_1", "MS_12", "MS_2", "db-main"});
}
std::shared_ptr<const std::vector<std::string>> caps_test_callers() {
  return std::make_shared<const std::vector<std::string>>(std::vector<std::string>{"MS_1", "MS_2"});
}
// Requests of 4, 9, 20 and 30 calls, each at depth 2, 3 and 4.
std::vector<GenerateRequest> sized_requests() {
  std::vector<GenerateRequest> reqs;
  for (int64_t e : {4, 9, 20, 30})
    for (int64_t d : {2, 3, 4}) {
      GenerateRequest r;
      r.num_edges = e;
      r.depth = d;
      reqs.push_back(r);
    }
  return reqs;
}

// Subtree caps (LayerSpec::subtree_caps) are soft: random walks still
// complete every request with valid graphs, and write fewer subtrees larger
// than their callee's cap than the same walks without caps.
TEST(LayerConstraint, SubtreeCapsBoundSubgraphSizesWhileRequestsComplete) {
  auto names = caps_test_names();
  auto callers = caps_test_callers();
  auto caps = std::make_shared<const std::vector<std::pair<std::string, SubtreeSize>>>(
      std::vector<std::pair<std::string, SubtreeSize>>{{"MS_1", {2, 1}}, {"MS_2", {40, 39}}});
  const std::vector<GenerateRequest> reqs = sized_requests();
  auto over = [&](const std::vector<GeneratedGraph>& gs) {  // subtrees under MS_1 above 2 calls
    int64_t n = 0;
    for (const GeneratedGraph& g : gs) {
      EXPECT_TRUE(g.complete) << g.error;
      EXPECT_TRUE(is_valid(validate(g.graph), true));
      GraphIndex ix = g.graph.index();
      std::vector<int64_t> below(g.graph.edges.size(), 0);
      for (size_t i = g.graph.edges.size(); i-- > 0;)
        if (ix.parent[i] != GraphIndex::kNone) below[ix.parent[i]] += below[i] + 1;
      for (size_t i = 0; i < below.size(); ++i)
        n += g.graph.edges[i].callee == "MS_1" && below[i] > 2;
    }
    return n;
  };
  int64_t with = 0, without = 0;
  for (uint64_t seed : {3, 4, 5, 6}) {
    with += over(walk(reqs, seed, {}, names, false, nullptr, false, nullptr, callers, caps));
    without += over(walk(reqs, seed, {}, names, false, nullptr, false, nullptr, callers));
  }
  EXPECT_GT(without, 0) << "the walks never needed the caps";
  EXPECT_LT(with, without);
}

// The floors (SubtreeSize::least) are soft too: random walks, whose
// layers often leave a line fewer calls than its callee's least, still
// complete every request with valid graphs.
TEST(LayerConstraint, LeastCallsBelowKeepEveryRequestComplete) {
  auto names = caps_test_names();
  auto callers = caps_test_callers();
  auto caps = std::make_shared<const std::vector<std::pair<std::string, SubtreeSize>>>(
      std::vector<std::pair<std::string, SubtreeSize>>{
          {"MS_1", {30, 29, 5, 10, 0.0, 2, LayerConstraint::kLeastSupport}},
          {"MS_2", {40, 39, 5, 10, 0.0, 3, LayerConstraint::kLeastSupport}}});
  const std::vector<GenerateRequest> reqs = sized_requests();
  size_t graphs = 0;
  for (uint64_t seed : {3, 4, 5, 6})
    for (const GeneratedGraph& g :
         walk(reqs, seed, {}, names, false, nullptr, false, nullptr, callers, caps)) {
      EXPECT_TRUE(g.complete) << g.error;
      EXPECT_TRUE(is_valid(validate(g.graph), true));
      ++graphs;
    }
  EXPECT_EQ(graphs, 4 * reqs.size());
}

// The spec of a layer with `conditions` and destinations MS_1, MS_2, MS_3
// and db-main.
LayerSpec spec_with_names(const std::string& conditions) {
  Attributes a;
  std::string e;
  EXPECT_TRUE(parse_attributes(conditions, &a, &e)) << e;
  LayerSpec spec;
  EXPECT_TRUE(LayerSpec::from_attributes(a, &spec, &e)) << e;
  spec.names = std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"MS_1", "MS_2", "MS_3", "db-main"});
  return spec;
}

// Whether a layer with `conditions`, destinations MS_1, MS_2, MS_3 (callers)
// and db-main, and these subtree caps accepts `text`.
bool accepts_with_caps(const std::vector<std::pair<std::string, SubtreeSize>>& caps,
                       const std::string& conditions, std::string_view text) {
  LayerSpec spec = spec_with_names(conditions);
  spec.callers = std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"MS_1", "MS_2", "MS_3"});
  spec.subtree_caps =
      std::make_shared<const std::vector<std::pair<std::string, SubtreeSize>>>(caps);
  LayerConstraint c(spec, {});
  return c.feed(text);
}

// The edges MS_1 (5 -> 20 ms) and MS_2 (6 -> 30 ms), and the first
// attributes of edge 1's subgraph line.
const std::string kTwoCallsHead =
    "<layer>\n<edges>\n(edge_id is 1,destination is MS_1,type is rpc,communication starts at "
    "5 milliseconds,communication finishes at 20 milliseconds)\n(edge_id is 2,destination is "
    "MS_2,type is rpc,communication starts at 6 milliseconds,communication finishes at 30 "
    "milliseconds)\n</edges>\n<subgraph of edge_id 1>id:S_1/caller:MS_0/start_node:MS_1/"
    "start_edge_id:1/start_communication_at:5/latency:20/";
// Two lines share 20 - 2 = 18 calls and carry a depth of 3.
const std::string kTwoLines =
    "id:S_1/caller:USER/start_node:MS_0/start_edge_id:1/start_communication_at:5/latency:50/"
    "num_current_edges:2/remaining_depth:4/num_edges:20/num_subgraphs:2";

// The caps on one subgraph line, whatever order its sizes come in: MS_1
// makes at most 3 calls, has at most 8 calls below it, 2 below one of its
// calls and one level below its calls, and at least half of its calls make
// calls; the values past them are refused while the line can still meet
// them.
TEST(LayerConstraint, SubtreeCapsNarrowEachSizeOfALine) {
  const std::vector<std::pair<std::string, SubtreeSize>> caps = {{"MS_1", {8, 2, 1, 3, 0.5}},
                                                                 {"MS_2", {60, 59, 10, 15, 0.0}}};
  auto accepts = [&](const std::string& conditions, std::string_view text) {
    return accepts_with_caps(caps, conditions, text);
  };
  const std::string& head = kTwoCallsHead;
  // MS_2 can hold all 18 calls, and carry the depth.
  const std::string& both = kTwoLines;
  EXPECT_TRUE(accepts(both, head + "num_current_edges:3/"));
  EXPECT_FALSE(accepts(both, head + "num_current_edges:4/"));  // width
  EXPECT_TRUE(accepts(both, head + "remaining_depth:1/"));
  EXPECT_FALSE(accepts(both, head + "remaining_depth:2/"));  // depth
  EXPECT_TRUE(accepts(both, head + "num_edges:8/"));
  EXPECT_FALSE(accepts(both, head + "num_edges:9/"));  // below
  EXPECT_TRUE(accepts(both, head + "num_subgraphs:3/"));
  EXPECT_FALSE(accepts(both, head + "num_subgraphs:4/"));  // subgraphs <= width
  EXPECT_FALSE(accepts(both, head + "num_current_edges:2/num_subgraphs:1/num_edges:5/"));  // 2+1x2
  EXPECT_TRUE(accepts(both, head + "num_current_edges:2/num_subgraphs:1/num_edges:4/"));
  EXPECT_FALSE(accepts(both, head + "num_current_edges:3/num_subgraphs:1/"));  // share
  EXPECT_TRUE(accepts(both, head + "num_current_edges:3/num_subgraphs:2/"));
  EXPECT_FALSE(accepts(both, head + "num_subgraphs:1/num_current_edges:3/"));  // 1 / 0.5
  EXPECT_TRUE(accepts(both, head + "num_subgraphs:1/num_current_edges:2/"));
  // One line (edge 2 goes to the database) for 8 - 2 = 6 calls: MS_1 must take them all,
  // so a width of 1 (at most 1 + 1 x 2 = 3 calls) is refused (no subgraphs with a width of 2
  // the plain rules refuse too).
  const std::string one =
      "id:S_1/caller:USER/start_node:MS_0/start_edge_id:1/start_communication_at:5/latency:50/"
      "num_current_edges:2/remaining_depth:2/num_edges:8/num_subgraphs:1";
  const std::string head_db = [&] {
    std::string h = head;
    h.replace(h.find("destination is MS_2"), 19, "destination is db-main");
    return h;
  }();
  EXPECT_FALSE(accepts(one, head_db + "num_current_edges:1/"));
  EXPECT_TRUE(accepts(one, head_db + "num_current_edges:2/"));
  EXPECT_FALSE(accepts(one, head_db + "num_current_edges:2/num_subgraphs:0/"));
  EXPECT_TRUE(accepts(one, head_db + "num_current_edges:2/num_subgraphs:2/"));
  // Subgraphs before the width: 6 calls need ceil((6 - 3) / 2) = 2 of them (3 calls at most,
  // 2 below each), and so do 7 calls written before them.
  EXPECT_FALSE(accepts(one, head_db + "num_subgraphs:1/"));
  EXPECT_TRUE(accepts(one, head_db + "num_subgraphs:2/"));
  EXPECT_FALSE(accepts(both, head + "num_edges:7/num_subgraphs:1/"));
  EXPECT_TRUE(accepts(both, head + "num_edges:7/num_subgraphs:2/"));
  // No levels below MS_1's calls would leave its 3 calls at most: not for 7 calls.
  EXPECT_FALSE(accepts(both, head + "num_edges:7/remaining_depth:0/"));
  EXPECT_TRUE(accepts(both, head + "num_edges:7/remaining_depth:1/"));
  EXPECT_TRUE(accepts(both, head + "num_edges:3/remaining_depth:0/"));
  // When no value meets a cap, the caps give way: the request still completes.
  const std::string over =
      "id:S_1/caller:USER/start_node:MS_0/start_edge_id:1/start_communication_at:5/latency:50/"
      "num_current_edges:2/remaining_depth:2/num_edges:14/num_subgraphs:1";
  EXPECT_TRUE(accepts(over, head_db + "num_edges:12/"));
}

// A layer of three calls from MS_0 to a, b and c.
std::string three_calls(const char* a, const char* b, const char* c) {
  std::string t = "<layer>\n<edges>\n";
  int id = 1;
  for (const char* d : {a, b, c}) {
    t += "(edge_id is " + std::to_string(id) + ",destination is " + d +
         ",type is rpc,communication starts at " + std::to_string(4 + id) +
         " milliseconds,communication finishes at 20 milliseconds)\n";
    ++id;
  }
  return t + "</edges>\n";
}

// Known layers (LayerSpec::layers): MS_0's three-call layers in training were
// (MS_1, MS_1, MS_2) and (MS_1, MS_3, MS_3); a layer follows one of them,
// also where it owes subgraphs to callers, and gives way when no known layer
// has a caller where one is due.
TEST(LayerConstraint, KnownLayersFollowATrainingSequence) {
  const std::vector<std::vector<std::string>> seqs = {
      {"MS_1", "MS_1", "MS_2"}, {"MS_1", "MS_3", "MS_3"}, {"MS_2", "MS_2"}};
  auto all = [](const std::string&) { return true; };
  auto callers =
      std::make_shared<const std::vector<std::string>>(std::vector<std::string>{"MS_2", "MS_3"});
  std::shared_ptr<const LayerTrie> trie = LayerTrie::of(seqs, 3, all, callers.get());
  ASSERT_TRUE(trie);
  EXPECT_EQ(trie->nodes[0].names, (std::vector<std::string>{"MS_1"}));
  EXPECT_TRUE(trie->nodes[0].callers.empty());
  const LayerTrie::Node& second = trie->nodes[static_cast<size_t>(trie->nodes[0].next[0])];
  EXPECT_EQ(second.names, (std::vector<std::string>{"MS_1", "MS_3"}));
  EXPECT_EQ(second.callers, (std::vector<std::string>{"MS_3"}));
  EXPECT_FALSE(LayerTrie::of(seqs, 4, all));  // no layer of that width
  EXPECT_FALSE(LayerTrie::of(seqs, 2, [](const std::string& n) { return n != "MS_2"; }));

  auto spec_of = [&](const std::string& conditions, bool with_trie) {
    LayerSpec spec = spec_with_names(conditions);
    spec.callers = callers;
    if (with_trie) spec.layers = trie;
    return spec;
  };
  const std::string leaf =
      "id:S_1/caller:USER/start_node:MS_0/start_edge_id:1/start_communication_at:5/latency:50/"
      "num_current_edges:3/remaining_depth:0/num_edges:3/num_subgraphs:0";
  auto accepts = [&](const std::string& conditions, const std::string& text, bool with_trie) {
    LayerConstraint c(spec_of(conditions, with_trie), {});
    return c.feed(text);
  };
  EXPECT_TRUE(accepts(leaf, three_calls("MS_1", "MS_1", "MS_2") + "</layer>\n", true));
  EXPECT_TRUE(accepts(leaf, three_calls("MS_1", "MS_3", "MS_3") + "</layer>\n", true));
  EXPECT_FALSE(accepts(leaf, three_calls("MS_1", "MS_1", "MS_3"), true));  // a mix of the two
  EXPECT_FALSE(accepts(leaf, three_calls("MS_1", "MS_3", "MS_2"), true));
  EXPECT_FALSE(accepts(leaf, three_calls("MS_2", "MS_2", "MS_2"), true));
  EXPECT_TRUE(accepts(leaf, three_calls("MS_1", "MS_1", "MS_3") + "</layer>\n", false));
  // Subgraphs owed (MS_2 and MS_3 call others): where the next call must be to a caller,
  // the known layers' callers there: after (MS_1, MS_1) MS_2; after MS_1, MS_3.
  auto owes = [](int subgraphs) {
    return "id:S_1/caller:USER/start_node:MS_0/start_edge_id:1/start_communication_at:5/"
           "latency:50/num_current_edges:3/remaining_depth:1/num_edges:" +
           std::to_string(3 + subgraphs) + "/num_subgraphs:" + std::to_string(subgraphs);
  };
  EXPECT_TRUE(accepts(owes(1), three_calls("MS_1", "MS_1", "MS_2"), true));
  EXPECT_FALSE(accepts(owes(1), three_calls("MS_1", "MS_1", "MS_3"), true));
  EXPECT_TRUE(accepts(owes(2), three_calls("MS_1", "MS_3", "MS_3"), true));
  EXPECT_FALSE(accepts(owes(2), three_calls("MS_1", "MS_2", "MS_2"), true));
  // Three owed: the first call must be to a caller and no known layer starts with one: the
  // rule gives way and the layer completes.
  EXPECT_TRUE(accepts(owes(3), three_calls("MS_2", "MS_3", "MS_2"), true));
  EXPECT_FALSE(accepts(owes(3), three_calls("MS_1", "MS_3", "MS_3"), true));

  // Random walks through the automaton write only the two known layers, both of them.
  std::vector<std::string> vocab = vocabulary();
  std::map<std::string, int> layers;
  const std::regex dest("destination is ([A-Za-z0-9_]+)");
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    LayerConstraint c(spec_of(leaf, true), {});
    Rng rng(seed);
    int64_t masked = 0;
    std::string text = walk_unit(c, vocab, rng, &masked), seq;
    for (std::sregex_iterator it(text.begin(), text.end(), dest), end; it != end; ++it)
      seq += (*it)[1].str() + " ";
    ++layers[seq];
  }
  EXPECT_EQ(layers.size(), 2u);
  EXPECT_TRUE(layers.count("MS_1 MS_1 MS_2 ") && layers.count("MS_1 MS_3 MS_3 "));
}

// The least calls below one call to a callee (SubtreeSize::least), when seen
// over enough calls: a line to MS_1, never with fewer than 4 calls below it,
// may not take 3, nor a size that cannot reach 4; and a line before one to
// MS_2, never with fewer than 5, leaves it 5 of the 18 calls.
TEST(LayerConstraint, LeastCallsBelowFloorALineAndAreLeftToTheLaterLines) {
  auto with = [](int64_t calls) {
    return std::vector<std::pair<std::string, SubtreeSize>>{
        {"MS_1", {16, 2, 1, 8, 0.0, 4, calls}}, {"MS_2", {60, 59, 10, 15, 0.0, 5, calls}}};
  };
  const auto trusted = with(LayerConstraint::kLeastSupport);
  const auto untrusted = with(LayerConstraint::kLeastSupport - 1);
  auto accepts = [&](const auto& caps, std::string_view rest) {
    return accepts_with_caps(caps, kTwoLines, kTwoCallsHead + std::string(rest));
  };
  EXPECT_FALSE(accepts(trusted, "num_edges:3/"));
  EXPECT_TRUE(accepts(trusted, "num_edges:4/"));
  EXPECT_TRUE(accepts(untrusted, "num_edges:3/"));  // seen over too few calls
  // Without subgraphs, 4 calls; else at least ceil(4 / (1 + 2)) = 2 (2 below each at most).
  EXPECT_FALSE(accepts(trusted, "num_subgraphs:0/num_current_edges:3/"));
  EXPECT_TRUE(accepts(trusted, "num_subgraphs:0/num_current_edges:4/"));
  EXPECT_FALSE(accepts(trusted, "num_current_edges:1/"));
  EXPECT_TRUE(accepts(untrusted, "num_current_edges:1/"));
  EXPECT_TRUE(accepts(trusted, "num_edges:13/"));  // 18 - 13 = 5 left for MS_2
  EXPECT_FALSE(accepts(trusted, "num_edges:14/"));
  EXPECT_TRUE(accepts(untrusted, "num_edges:14/"));
}

// Instruction-format generation without a model: the assembler, given the
// encoder's own answers for the questions it asks, rebuilds every graph; the
// questions carry the natural-language conditions of the request.
TEST(InstructionAssembly, EncodedAnswersRebuildTheGraphs) {
  std::string csv = ::testing::TempDir() + "/instruction_assembly.csv";
  testing::write_file(csv, synthetic_raw_csv({}));
  std::vector<CallGraph> graphs;
  ingest({csv}, {}, {[&](CallGraph&& g) { graphs.push_back(std::move(g)); }, nullptr, nullptr});
  ASSERT_GT(graphs.size(), 100u);
  graphs.resize(120);
  ConditionStats stats;
  for (const CallGraph& g : graphs) stats.add(g);
  stats.finalize();
  GraphAssembler as(graphs.size(), 0, 100000, /*instruction=*/true);
  // Answers by (graph, sorted requirement attributes), in pre-order.
  auto key = [](size_t g, const Attributes& a) {
    auto items = a.items;
    std::sort(items.begin(), items.end());
    std::string k = std::to_string(g);
    for (auto& [n, v] : items) k += "/" + n + ":" + v;
    return k;
  };
  std::multimap<std::string, std::string> answers;
  Rng rng(3);
  InstructionOptions opt;
  opt.recursive.p_drop = opt.recursive.p_drop_latency = 0;
  std::vector<GenerateRequest> reqs(graphs.size());
  for (size_t g = 0; g < graphs.size(); ++g) {
    std::vector<InstructionSample> samples = encode_instruction(graphs[g], &stats, opt, rng);
    for (size_t u = 0; u < samples.size(); ++u) {
      ParsedInstruction p;
      ParseError err;
      ASSERT_TRUE(parse_instruction(samples[u].question + samples[u].answer, &p, &err));
      answers.emplace(key(g, p.requirements), samples[u].answer);
      if (u == 0) {
        Rng r2(0);
        std::vector<Unit> plan = plan_units(graphs[g], r2);
        as.add_root(g, plan[0].cond);
      }
    }
    reqs[g].high_latency = g % 2 == 0;
  }
  int64_t questions = 0;
  while (!as.empty()) {
    LayerJob j = as.pop();
    j.prompt = instruction_prompt(j, reqs[j.graph]);
    ParsedInstruction q;
    ParseError err;
    // The question alone parses up to its answer.
    EXPECT_FALSE(parse_instruction(j.prompt, &q, &err));
    EXPECT_NE(err.what.find("'<layer>' or '<split>'"), std::string::npos) << err.what;
    bool root = j.prefix.empty() && !j.announced.has("caller");
    EXPECT_EQ(root && j.graph % 2 == 0 && !j.announced.has("latency"),
              j.prompt.find("Build a call graph with high latency") != std::string::npos);
    auto it = answers.find(key(j.graph, j.announced));
    ASSERT_NE(it, answers.end()) << j.prompt;
    std::string answer = it->second;
    answers.erase(it);
    ++questions;
    // The dummy-prefix space a model trained on separately tokenized answers writes.
    if (questions % 2) answer = " " + answer;
    as.finish(std::move(j), answer);
  }
  EXPECT_TRUE(answers.empty());
  std::vector<GeneratedGraph> out = as.take();
  for (size_t g = 0; g < graphs.size(); ++g) {
    ASSERT_TRUE(out[g].complete) << out[g].error;
    EXPECT_TRUE(out[g].graph.same_content(graphs[g])) << g;
  }
  EXPECT_GT(questions, static_cast<int64_t>(graphs.size()));
}

// Constrained instruction answers: random walks through the instruction
// automaton give valid graphs that meet the request, and every answer's
// scratchpad is the one the encoder computes for its unit (block lines
// compared as sets, as the encoder shuffles them).
TEST(InstructionConstraint, RandomWalksGiveValidGraphsAndExactScratchpads) {
  std::vector<GenerateRequest> reqs = request_grid();
  GenerateRequest only_edges;  // depth open: the model writes the root's depth
  only_edges.num_edges = 9;
  reqs.push_back(only_edges);
  std::string err;
  GenerateRequest rc;
  rc.num_edges = 7;
  rc.call = *CallRequest::parse("MS_4,MS_44,mq", &err);
  reqs.push_back(rc);
  for (uint64_t seed : {1, 2, 3}) {
    std::vector<std::string> answers;
    std::vector<GeneratedGraph> gs = walk(reqs, seed, {}, nullptr, true, &answers);
    for (size_t i = 0; i < gs.size(); ++i) {
      const GeneratedGraph& g = gs[i];
      ASSERT_TRUE(g.complete) << i << ": " << g.error;
      EXPECT_TRUE(is_valid(validate(g.graph), /*strict=*/true)) << i;
      if (reqs[i].num_edges)
        EXPECT_EQ(static_cast<int64_t>(g.graph.edges.size()), *reqs[i].num_edges) << i;
      if (reqs[i].depth) EXPECT_EQ(g.graph.depth(), *reqs[i].depth) << i;
      if (reqs[i].latency) EXPECT_EQ(g.graph.latency(), *reqs[i].latency) << i;
      if (reqs[i].call) EXPECT_TRUE(has_call(g.graph, *reqs[i].call)) << i;
    }
    LayerSpec root_spec;
    std::string e2;
    Attributes ra;
    ASSERT_TRUE(
        parse_attributes("id:S_1/num_edges:1/start_node:USER/num_current_edges:1", &ra, &e2));
    ASSERT_TRUE(LayerSpec::from_attributes(ra, &root_spec, &e2)) << e2;
    root_spec.num_subgraphs = 0;
    InstructionConstraint lead(root_spec, {});
    EXPECT_TRUE(lead.accepts(" <layer>\n"));  // the dummy-prefix space, once
    EXPECT_FALSE(lead.accepts("  <layer>\n"));
    for (const std::string& a : answers) {
      ParsedInstruction p;
      ParseError perr;
      ASSERT_TRUE(parse_instruction(a, &p, &perr)) << perr.what << "\n" << a;
      std::vector<std::string> want = scratchpad_lines(p.unit, nullptr);
      std::vector<std::string> got = p.scratchpad;
      // The encoder's last line is the close tag's own line; ours too.
      std::multiset<std::string> ws(want.begin(), want.end()), gs2(got.begin(), got.end());
      EXPECT_EQ(ws, gs2) << a;
    }
  }
}

TEST(InstructionAssembly, RareCallSentenceOnTheLayerThatMustHoldIt) {
  LayerJob j;
  j.start_node = "MS_7";
  Attributes a;
  std::string e;
  ASSERT_TRUE(parse_attributes(
      "id:S_1/caller:USER/start_node:MS_7/start_edge_id:1/start_communication_at:0/latency:9/"
      "num_current_edges:2/remaining_depth:0/num_edges:2/num_subgraphs:0",
      &a, &e));
  j.announced = a;
  j.prefix = "0";
  j.require = RequiredCall{"MS_8", "rpc", "", ""};
  std::string q = instruction_prompt(j, GenerateRequest{});
  EXPECT_NE(q.find("Include an edge from MS_7 to MS_8 with rpc type\n"), std::string::npos) << q;
  EXPECT_NE(q.find("generate 2 edges following num_current_edges\n"), std::string::npos);
  EXPECT_NE(q.find("no subgraph to generate\n"), std::string::npos);
  EXPECT_TRUE(q.ends_with(std::string(kAnswerHead) + "\n")) << q;
}

TEST(CallRequest, ParsesAndRefuses) {
  std::string err;
  auto c = CallRequest::parse("MS_1,MS_2,RPC", &err);
  ASSERT_TRUE(c) << err;
  EXPECT_EQ(c->type, "rpc");
  EXPECT_TRUE(CallRequest::parse("MS_1,MS_2", &err));
  EXPECT_FALSE(CallRequest::parse("MS_1", &err));
  EXPECT_NE(err.find("CALLER,CALLEE"), std::string::npos) << err;
  EXPECT_FALSE(CallRequest::parse("MS_1,MS_2,grpc", &err));
  EXPECT_NE(err.find("grpc"), std::string::npos) << err;
  EXPECT_FALSE(CallRequest::parse("MS 1,MS_2", &err));
  GenerateRequest r;
  r.call = *CallRequest::parse("MS_1,MS_2", &err);
  r.depth = 1;
  CorpusPriors priors;
  priors.services = {{"S_1", 1}};
  Rng rng(1);
  EXPECT_THROW(root_conditions(r, priors, rng), std::invalid_argument);
}

// Every layer of every real graph, as the encoder writes it (phrases and
// attributes shuffled), is accepted: the constraint allows what the data has.
TEST(LayerConstraint, AcceptsTheLayersOfRealGraphs) {
  REQUIRE_SHARED("data/alibaba-v2022/callgraphs-train.csv");
  std::vector<CallGraph> real;
  ingest({testing::shared_path("data/alibaba-v2022/callgraphs-train.csv")}, {},
         {[&](CallGraph&& g) { real.push_back(std::move(g)); }, nullptr, nullptr});
  ASSERT_GT(real.size(), 1000u);
  int64_t units = 0, accepted = 0;
  std::string first_failure;
  for (const CallGraph& g : real) {
    Rng rng(5);
    std::vector<Unit> plan = plan_units(g, rng);
    RecursiveOptions opt;
    opt.p_drop = opt.p_drop_latency = 0;
    for (size_t u = 0; u < plan.size(); ++u) {
      std::string fixed = format_unit_body(g, plan, u, opt, rng);
      LayerSpec spec;
      std::string why;
      ++units;
      if (!LayerSpec::from_attributes(plan[u].cond.to_attributes(), &spec, &why)) continue;
      LayerConstraint con(spec, {});
      size_t bad = 0;
      while (bad < fixed.size() && con.feed(std::string_view(&fixed[bad], 1))) ++bad;
      if (bad == fixed.size() && con.done()) {
        ++accepted;
      } else if (first_failure.empty()) {
        first_failure = "unit " + std::to_string(u) + " of " + g.trace_id + " rejected at byte " +
                        std::to_string(bad) + ":\n" + fixed.substr(0, bad) + "<<HERE>>" +
                        fixed.substr(bad);
      }
    }
  }
  // Real layers the rules reject: a group of one chunk (the constraint always
  // splits into 2-5 items) and children that start before their parent
  // (clock skew). Everything else passes.
  EXPECT_GE(accepted, units * 99 / 100) << first_failure;
  RecordProperty("accepted", std::to_string(accepted) + "/" + std::to_string(units));
}

TEST(LayerConstraint, RejectsTheClassicMistakes) {
  Attributes a;
  std::string e;
  ASSERT_TRUE(parse_attributes(
      "id:S_1/caller:USER/start_node:MS_1/start_edge_id:1/start_communication_at:5/latency:50/"
      "num_current_edges:2/remaining_depth:1/num_edges:3/num_subgraphs:1",
      &a, &e));
  LayerSpec spec;
  ASSERT_TRUE(LayerSpec::from_attributes(a, &spec, &e)) << e;
  auto accepts = [&](std::string_view text) {
    LayerConstraint c(spec, {});
    return c.feed(text);
  };
  const std::string head = "<layer>\n<edges>\n";
  EXPECT_TRUE(accepts(head + "(edge_id is 1,destination is MS_2,type is rpc,"));
  EXPECT_FALSE(accepts("<split>\n"));                             // 2 edges is a layer
  EXPECT_FALSE(accepts(head + "(edge_id is 2,"));                 // ids start at start_edge_id
  EXPECT_FALSE(accepts(head + "(edge_id is 1,edge_id is 1"));     // a phrase twice
  EXPECT_FALSE(accepts(head + "(type is grpc"));                  // unknown type
  EXPECT_FALSE(accepts(head + "(communication starts at 4 "));    // before start_communication_at
  EXPECT_FALSE(accepts(head + "(communication starts at 6 "));    // the first edge starts at sca
  EXPECT_FALSE(accepts(head + "(communication finishes at 51"));  // after the latency
  EXPECT_FALSE(accepts(head + "(destination is UNKNOWN,"));       // a missing-data marker
  const std::string e1 =
      "(edge_id is 1,destination is MS_2,type is rpc,communication starts at 5 milliseconds,"
      "communication finishes at 20 milliseconds)\n";
  EXPECT_TRUE(accepts(head + e1));
  EXPECT_FALSE(accepts(head + e1 + "</edges>\n"));  // two edges were asked
  const std::string e2 =
      "(edge_id is 2,communication finishes at 30 milliseconds,destination is MS_3,type is db,"
      "communication starts at 9 milliseconds)\n";
  EXPECT_TRUE(accepts(head + e1 + e2 + "</edges>\n"));
  EXPECT_FALSE(accepts(head + e1 + e2 + "</edges>\n</layer>"));  // one subgraph was asked
  EXPECT_FALSE(accepts(head + e1 + e2 + "</edges>\n<subgraph of edge_id 3"));  // no edge 3
  const std::string sub = head + e1 + e2 + "</edges>\n<subgraph of edge_id 1>id:S_1/caller:MS_1/";
  EXPECT_TRUE(accepts(sub));
  EXPECT_FALSE(accepts(sub + "start_node:MS_3"));  // edge 1 calls MS_2
  const std::string sub2 = sub + "start_node:MS_2/start_edge_id:1/start_communication_at:";
  EXPECT_FALSE(accepts(sub2 + "21/"));  // after edge 1 finished
  EXPECT_TRUE(accepts(sub2 + "6/latency:20/num_current_edges:1/remaining_depth:0/num_edges:1/"
                             "num_subgraphs:0</subgraph>\n</layer>\n"));
  EXPECT_FALSE(accepts(sub2 + "6/latency:21/"));                      // after edge 1's finish
  EXPECT_FALSE(accepts(sub2 + "6/latency:20/num_current_edges:2/"));  // 3 - 2 edges left: 1
  EXPECT_FALSE(accepts(sub2 + "6/latency:20/num_current_edges:1/remaining_depth:1/"));  // depth 1
}

TEST(IntSet, PrefixesAndMembership) {
  IntSet s;
  s.add(7, 7);
  s.add(120, 135);
  EXPECT_TRUE(s.has_prefix(1, 1));
  EXPECT_TRUE(s.has_prefix(12, 2));
  EXPECT_FALSE(s.has_prefix(14, 2));
  EXPECT_TRUE(s.has_prefix(13, 2));
  EXPECT_FALSE(s.has_prefix(0, 1));
  EXPECT_TRUE(s.contains(7));
  EXPECT_FALSE(s.contains(12));
  IntSet z = IntSet::range(0, 0);
  EXPECT_TRUE(z.has_prefix(0, 1));
}

}  // namespace
}  // namespace tracelm

namespace tracelm {
namespace {

TEST(RootConditions, OpenRequestsDrawFromTheCorpusAndBadOnesAreRefused) {
  CorpusPriors p;
  p.services = {{"S_1", 1}, {"S_2", 0}};
  p.num_edges = {{1, 5}, {3, 5}, {7, 5}};
  Rng rng(1);
  std::set<int64_t> sizes;
  for (int i = 0; i < 200; ++i) {
    LayerConditions c = root_conditions({}, p, rng);
    EXPECT_EQ(c.id, "S_1");
    ASSERT_TRUE(c.num_edges);
    sizes.insert(*c.num_edges);
    EXPECT_EQ(*c.num_subgraphs, *c.num_edges > 1 ? 1 : 0);
  }
  EXPECT_EQ(sizes, (std::set<int64_t>{1, 3, 7}));
  GenerateRequest deep;
  deep.depth = 4;
  for (int i = 0; i < 50; ++i) EXPECT_EQ(*root_conditions(deep, p, rng).num_edges, 7);
  GenerateRequest bad;
  bad.num_edges = 3;
  bad.depth = 4;
  EXPECT_THROW(root_conditions(bad, p, rng), std::invalid_argument);
  bad.depth = 1;
  EXPECT_THROW(root_conditions(bad, p, rng), std::invalid_argument);
  EXPECT_THROW(root_conditions({}, CorpusPriors{}, rng), std::invalid_argument);
}

TEST(RootConditions, OpenAttributesComeTogetherFromOneTrainingGraph) {
  CorpusPriors p;
  p.services = {{"S_1", 2}, {"S_2", 1}};
  p.num_edges = {{2, 1}, {5, 1}, {9, 1}};
  p.roots = {{"S_1", 2, 2, 10}, {"S_1", 9, 4, 700}, {"S_2", 5, 3, 40}};
  Rng rng(3);
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    LayerConditions c = root_conditions({}, p, rng);
    // Never a mix of two graphs' attributes (S_1 with 5 calls, 2 calls with 700 ms).
    std::string key = c.id + " " + std::to_string(*c.num_edges) + " " +
                      std::to_string(*c.remaining_depth + 1) + " " + std::to_string(*c.latency);
    EXPECT_TRUE(key == "S_1 2 2 10" || key == "S_1 9 4 700" || key == "S_2 5 3 40") << key;
    seen.insert(key);
  }
  EXPECT_EQ(seen.size(), 3u);
  GenerateRequest s2;
  s2.service = "S_2";
  LayerConditions c = root_conditions(s2, p, rng);
  EXPECT_EQ(*c.num_edges, 5);
  EXPECT_EQ(*c.latency, 40);
  // A fixed latency is kept; the rest still comes from an agreeing graph.
  GenerateRequest big;
  big.num_edges = 9;
  big.latency = 5;
  c = root_conditions(big, p, rng);
  EXPECT_EQ(c.id, "S_1");
  EXPECT_EQ(*c.remaining_depth, 3);
  EXPECT_EQ(*c.latency, 5);
  // No training graph agrees: the marginals, and the model picks depth and latency.
  GenerateRequest none;
  none.service = "S_3";
  c = root_conditions(none, p, rng);
  EXPECT_FALSE(c.latency);
  EXPECT_FALSE(c.remaining_depth);
}

// Every graph complete, valid, and of the requested size, depth and latency
// (request_grid's requests ask for all three or the first two).
void expect_graphs_meet(const std::vector<GeneratedGraph>& gs,
                        const std::vector<GenerateRequest>& reqs) {
  ASSERT_EQ(gs.size(), reqs.size());
  for (size_t i = 0; i < gs.size(); ++i) {
    const GeneratedGraph& g = gs[i];
    ASSERT_TRUE(g.complete) << g.error;
    EXPECT_TRUE(is_valid(validate(g.graph), true)) << i;
    EXPECT_EQ(static_cast<int64_t>(g.graph.edges.size()), *reqs[i].num_edges) << i;
    EXPECT_EQ(g.graph.depth(), *reqs[i].depth) << i;
    if (reqs[i].latency) EXPECT_EQ(g.graph.latency(), *reqs[i].latency) << i;
  }
}

// With every name's longest call 1 ms, random walks over the request grid
// still complete every request with valid graphs of the asked sizes and
// latencies, and write far fewer calls longer than 1 ms than without.
TEST(LayerConstraint, KnownDurationsKeepEveryRequestFeasible) {
  std::vector<GenerateRequest> reqs = request_grid();
  auto names = std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"MS_1", "MS_2", "MS_3", "db-main"});
  std::vector<std::pair<std::string, int64_t>> ms;
  for (const std::string& n : *names) ms.emplace_back(n, 1);
  auto durations = std::make_shared<const std::vector<std::pair<std::string, int64_t>>>(ms);
  int64_t longer_with = 0, longer_without = 0, calls = 0;
  for (uint64_t seed : {1, 2}) {
    std::vector<GeneratedGraph> gs =
        walk(reqs, seed, {}, names, false, nullptr, false, nullptr, nullptr, nullptr, durations);
    expect_graphs_meet(gs, reqs);
    for (const GeneratedGraph& g : gs)
      for (const Edge& e : g.graph.edges) {
        if (e.caller == kUserNode) continue;
        ++calls;
        longer_with += e.finish_ms - e.start_ms > 1;
      }
    for (const GeneratedGraph& g : walk(reqs, seed, {}, names))
      for (const Edge& e : g.graph.edges)
        if (e.caller != kUserNode) longer_without += e.finish_ms - e.start_ms > 1;
  }
  EXPECT_GT(calls, 100);
  EXPECT_LT(longer_with * 2, longer_without);  // destinations written last stay unbounded
}

// Drawn widths (LayerSpec::shapes): the calls to MS_1 in training had 4
// calls below them 4 times (3 made by MS_1 itself 2 at a time, once 4) and 9
// below them 5 times (3 at a time). A line to MS_1 writes one width drawn
// by those counts among the shapes its num_edges may take (the nearest
// sizes when none has one it may take); MS_2's line, without shapes, leaves
// the width free.
// The widths 1..most that a kTwoLines layer with `shapes` accepts after
// `text` (a subgraph line being written), for the draw seed `seed`.
std::vector<int> drawn_widths(const std::shared_ptr<const CallShapes>& shapes, uint64_t seed,
                              const std::string& text, int most) {
  LayerSpec spec = spec_with_names(kTwoLines);
  spec.shapes = shapes;
  spec.draw_seed = seed;
  std::vector<int> ok;
  for (int w = 1; w <= most; ++w) {
    LayerConstraint c(spec, {});
    if (c.feed(text + "num_current_edges:" + std::to_string(w) + "/")) ok.push_back(w);
  }
  return ok;
}

TEST(LayerConstraint, DrawnWidthsFollowTheTrainingShapes) {
  auto shapes =
      std::make_shared<const CallShapes>(CallShapes{{"MS_1", {{4, 2, 3}, {4, 4, 1}, {9, 3, 5}}}});
  auto widths = [&](uint64_t seed, const std::string& text) {
    return drawn_widths(shapes, seed, text, 9);
  };
  std::map<int, int> after4, first;
  for (uint64_t seed = 0; seed < 900; ++seed) {
    std::vector<int> a = widths(seed, kTwoCallsHead + "num_edges:4/");
    ASSERT_EQ(a.size(), 1u) << seed;
    ++after4[a[0]];
    std::vector<int> b = widths(seed, kTwoCallsHead);
    ASSERT_EQ(b.size(), 1u) << seed;
    ++first[b[0]];
  }
  // 4 calls below: 2 (3 of 4) or 4 (1 of 4); before num_edges: any of the three by count.
  EXPECT_EQ(after4.size(), 2u);
  EXPECT_NEAR(after4[2], 675, 60);
  EXPECT_NEAR(after4[4], 225, 60);
  EXPECT_EQ(first.size(), 3u);
  EXPECT_NEAR(first[2], 300, 60);
  EXPECT_NEAR(first[4], 100, 45);
  EXPECT_NEAR(first[3], 500, 60);
  // No shape with 6 calls below: those nearest it (4 calls below: 2 or 4); with 12, 9's 3.
  std::set<int> near6;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    std::vector<int> a = widths(seed, kTwoCallsHead + "num_edges:6/");
    ASSERT_EQ(a.size(), 1u);
    near6.insert(a[0]);
  }
  EXPECT_EQ(near6, (std::set<int>{2, 4}));
  EXPECT_EQ(widths(1, kTwoCallsHead + "num_edges:12/"), (std::vector<int>{3}));
  // MS_2's line (edge 2), MS_1's written without a size: nothing known of MS_2.
  const std::string second = kTwoCallsHead +
                             "num_current_edges:2/remaining_depth:2/num_edges:9/"
                             "num_subgraphs:1</subgraph>\n<subgraph of edge_id 2>";
  EXPECT_GT(widths(1, second).size(), 3u);
}

// Drawn widths follow the line's remaining_depth: MS_1's calls had 4 calls
// below them 30 times as one call with two levels under it (1 wide) and 10
// times as three calls with one level under them (3 wide). With
// remaining_depth 1 written first, only the 3-wide shape fits (Alibaba: a
// 5-call, depth-3 request got the 1-wide shape of depth-4 graphs). With the
// depth free, both are drawn by count; with a depth no shape has (3), any
// shape, among the widths that depth allows (1).
TEST(LayerConstraint, DrawnWidthsFollowTheLinesDepth) {
  auto shapes =
      std::make_shared<const CallShapes>(CallShapes{{"MS_1", {{4, 1, 30, 2}, {4, 3, 10, 1}}}});
  auto widths = [&](uint64_t seed, const std::string& text) {
    return drawn_widths(shapes, seed, text, 4);
  };
  std::map<int, int> one, two, free, three;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    for (int w : widths(seed, kTwoCallsHead + "remaining_depth:1/num_edges:4/")) ++one[w];
    for (int w : widths(seed, kTwoCallsHead + "remaining_depth:2/num_edges:4/")) ++two[w];
    for (int w : widths(seed, kTwoCallsHead + "num_edges:4/")) ++free[w];
    for (int w : widths(seed, kTwoCallsHead + "remaining_depth:3/num_edges:4/")) ++three[w];
  }
  EXPECT_EQ(one, (std::map<int, int>{{3, 400}}));
  EXPECT_EQ(two, (std::map<int, int>{{1, 400}}));
  EXPECT_EQ(free.size(), 2u);
  EXPECT_NEAR(free[1], 300, 40);
  EXPECT_NEAR(free[3], 100, 40);
  EXPECT_EQ(three, (std::map<int, int>{{1, 400}}));
}

// With made-up shapes for every name, random walks over the request grid
// still complete every request with valid graphs of the asked sizes.
TEST(LayerConstraint, DrawnWidthsKeepEveryRequestFeasible) {
  std::vector<GenerateRequest> reqs = request_grid();
  auto names = std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"MS_1", "MS_2", "MS_3", "db-main"});
  CallShapes cs;
  for (const std::string& n : *names)
    cs.push_back({n, {{1, 1, 5}, {3, 2, 2}, {6, 2, 1}, {20, 4, 1}}});
  auto shapes = std::make_shared<const CallShapes>(cs);
  for (uint64_t seed : {1, 2}) {
    std::vector<GeneratedGraph> gs = walk(reqs, seed, {}, names, false, nullptr, false, nullptr,
                                          nullptr, nullptr, nullptr, shapes);
    expect_graphs_meet(gs, reqs);
  }
}

// Known types (LayerSpec::types): MS_0 calls MS_1 only as mc in training;
// MS_2 is only ever called as db (from MS_9); MS_3 has no known type. A type
// written after its destination is one of those; one written before it is
// free; the fixed phrase order writes the destination first.
TEST(LayerConstraint, KnownTypesFollowTheDestination) {
  const std::string leaf =
      "id:S_1/caller:USER/start_node:MS_0/start_edge_id:1/start_communication_at:5/latency:50/"
      "num_current_edges:3/remaining_depth:0/num_edges:3/num_subgraphs:0";
  auto types = std::make_shared<const CallTypes>(
      CallTypes{{"MS_1", {{"MS_0", 1u << 2}, {"MS_5", 1u << 1}}}, {"MS_2", {{"MS_9", 1u << 3}}}});
  auto accepts = [&](const std::string& text, bool fixed = false) {
    LayerSpec spec = spec_with_names(leaf);
    spec.types = types;
    spec.fixed_order = fixed;
    LayerConstraint c(spec, {});
    return c.feed(text);
  };
  const std::string open = "<layer>\n<edges>\n(edge_id is 1,";
  EXPECT_TRUE(accepts(open + "destination is MS_1,type is mc,"));
  EXPECT_FALSE(accepts(open + "destination is MS_1,type is rpc,"));  // MS_5's type, not MS_0's
  EXPECT_TRUE(accepts(open + "destination is MS_2,type is db,"));    // the callee's types
  EXPECT_FALSE(accepts(open + "destination is MS_2,type is mc,"));
  EXPECT_TRUE(accepts(open + "destination is MS_3,type is rpc,"));  // nothing known
  EXPECT_TRUE(accepts(open + "type is rpc,destination is MS_1,"));  // type first: free
  EXPECT_TRUE(accepts(open + "destination is MS_1,type is mc,", true));
  EXPECT_FALSE(accepts(open + "type is mc,", true));  // fixed order: destination before type
  EXPECT_FALSE(accepts(open + "destination is MS_1,type is rpc,", true));
}

// Known durations (LayerSpec::durations): MS_1's calls never lasted more than
// 3 ms in training, MS_2's 100. An edge whose destination comes before its
// second time lasts at most its destination's longest call; one whose
// destination comes last, at most the longest of what the known layers
// offer there (no bound without them); the root's fixed latency stands.
TEST(LayerConstraint, KnownDurationsBoundEachCall) {
  const std::string leaf =
      "id:S_1/caller:USER/start_node:MS_0/start_edge_id:1/start_communication_at:5/latency:50/"
      "num_current_edges:3/remaining_depth:0/num_edges:3/num_subgraphs:0";
  auto durations = std::make_shared<const std::vector<std::pair<std::string, int64_t>>>(
      std::vector<std::pair<std::string, int64_t>>{{"MS_1", 3}, {"MS_2", 100}});
  auto spec_of = [&](const std::string& conditions, std::shared_ptr<const LayerTrie> trie) {
    LayerSpec spec = spec_with_names(conditions);
    spec.durations = durations;
    spec.layers = std::move(trie);
    return spec;
  };
  auto accepts = [&](const std::string& text, std::shared_ptr<const LayerTrie> trie = nullptr) {
    LayerConstraint c(spec_of(leaf, std::move(trie)), {});
    return c.feed(text);
  };
  auto edge = [](int id, const std::string& phrases) {
    return "(edge_id is " + std::to_string(id) + "," + phrases + ")\n";
  };
  const std::string open = "<layer>\n<edges>\n";
  auto to = [](const char* dest) {
    return std::string("destination is ") + dest + ",type is rpc,";
  };
  auto starts = [](int ms) {
    return "communication starts at " + std::to_string(ms) + " milliseconds";
  };
  auto ends = [](int ms) {
    return "communication finishes at " + std::to_string(ms) + " milliseconds";
  };
  // First edge (starts at 5): MS_1 until 8, MS_2 until 50 (the latency).
  EXPECT_TRUE(accepts(open + edge(1, to("MS_1") + starts(5) + "," + ends(8))));
  EXPECT_FALSE(accepts(open + edge(1, to("MS_1") + starts(5) + "," + ends(9))));
  // The start still due (the first edge's is 5): a prefix of an edge.
  const std::string due = open + "(edge_id is 1," + to("MS_1");
  EXPECT_TRUE(accepts(due + ends(8) + ","));
  EXPECT_FALSE(accepts(due + ends(9) + ","));
  const std::string first = open + edge(1, to("MS_2") + starts(5) + "," + ends(6));
  // Finish first: the start no earlier than finish - 3.
  EXPECT_TRUE(accepts(first + edge(2, to("MS_1") + ends(20) + "," + starts(17))));
  EXPECT_FALSE(accepts(first + edge(2, to("MS_1") + ends(20) + "," + starts(16))));
  // Destination last: unbounded without known layers, the offered names' longest with them.
  auto late = [&](int finish) {
    return "type is rpc," + starts(6) + "," + ends(finish) + ",destination is MS_1";
  };
  EXPECT_TRUE(accepts(first + edge(2, late(40))));
  auto all = [](const std::string&) { return true; };
  auto ones = LayerTrie::of({{"MS_2", "MS_1", "MS_1"}}, 3, all);
  EXPECT_FALSE(accepts(first + edge(2, late(40)), ones));
  EXPECT_TRUE(accepts(first + edge(2, late(9)), ones));
  // The root call lasts the requested latency whatever its destination's longest call.
  {
    LayerConstraint c(spec_of("id:S_1/num_edges:1/start_node:USER/start_edge_id:0/"
                              "start_communication_at:0/num_current_edges:1/latency:40",
                              nullptr),
                      {});
    EXPECT_TRUE(c.feed(open + edge(0, to("MS_1") + starts(0) + "," + ends(40))));
  }
  // Random walks (phrases in any order) with the known layer (MS_2, MS_1, MS_1): every
  // MS_1 call lasts at most 3 ms; without durations, some last longer.
  std::vector<std::string> vocab = vocabulary();
  const std::regex call(R"(\(([^)]*)\))"), dest("destination is ([A-Za-z0-9_]+)"),
      start("starts at ([0-9]+)"), finish("finishes at ([0-9]+)");
  for (bool known : {true, false}) {
    int64_t longest = 0, calls = 0;
    for (uint64_t seed = 1; seed <= 40; ++seed) {
      LayerSpec spec = spec_of(leaf, ones);
      if (!known) spec.durations = nullptr;
      LayerConstraint c(spec, {});
      Rng rng(seed);
      int64_t masked = 0;
      std::string text = walk_unit(c, vocab, rng, &masked);
      ASSERT_TRUE(c.done()) << text;
      for (std::sregex_iterator it(text.begin(), text.end(), call), end; it != end; ++it) {
        std::string e = (*it)[1].str();
        std::smatch d, s, f;
        ASSERT_TRUE(std::regex_search(e, d, dest) && std::regex_search(e, s, start) &&
                    std::regex_search(e, f, finish))
            << e;
        if (d[1].str() != "MS_1") continue;
        ++calls;
        longest = std::max<int64_t>(longest, std::stoll(f[1].str()) - std::stoll(s[1].str()));
      }
    }
    EXPECT_EQ(calls, 80);
    if (known)
      EXPECT_LE(longest, 3);
    else
      EXPECT_GT(longest, 3);
  }
}

}  // namespace
}  // namespace tracelm
