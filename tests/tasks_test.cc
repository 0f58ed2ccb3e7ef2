// Downstream task data and scorers (src/tasks/task_data.h, score.h): the
// task files of a hand-made corpus byte for byte, the split by graph, the
// label rules from the train side only, and the scorers on hand-made answers.
#include <gtest/gtest.h>

#include <set>

#include "corpus/corpus.h"
#include "encode/text_format.h"
#include "io/input_error.h"
#include "tasks/score.h"
#include "tasks/task_data.h"
#include "tasks/task_report.h"
#include "test_util.h"

namespace tracelm {
namespace {

using testing::read_file;
using testing::TempDir;
using testing::write_file;

std::string data_path(const std::string& name) {
  return std::string(TRACELM_SOURCE_DIR) + "/tests/data/tasks/" + name;
}

// The options of the golden files: a small corpus needs lower thresholds.
TaskOptions golden_options() {
  TaskOptions o;
  o.seed = 7;
  o.min_graphs = 3;
  o.train_fraction = 0.5;
  o.rare_fraction = 0.3;
  return o;
}

constexpr std::array<TaskKind, 4> kAllKinds = {TaskKind::kInfillAttribute, TaskKind::kInfillCall,
                                               TaskKind::kPredictLatency,
                                               TaskKind::kPredictUncommon};

TEST(TaskData, GoldenFilesByteForByte) {
  std::vector<CallGraph> corpus = load_corpus(data_path("corpus.jsonl"));
  ASSERT_EQ(corpus.size(), 22u);
  TempDir dir;
  for (TaskKind k : kAllKinds) {
    std::string name = std::string(task_kind_name(k)) + ".jsonl";
    TaskSet set = make_tasks(k, corpus, golden_options());
    write_task_file(dir.file(name), set.records);
    EXPECT_EQ(read_file(dir.file(name)), read_file(data_path(name))) << name;
    // And the file reads back to the same records.
    EXPECT_EQ(read_task_file(dir.file(name)), set.records) << name;
  }
}

TEST(TaskData, CliWritesTheGoldenFile) {
  TempDir dir;
  std::string out = dir.file("t.jsonl");
  std::string cmd = std::string(TRACELM_BINARY) + " tasks make predict-uncommon " +
                    data_path("corpus.jsonl") + " -o " + out +
                    " --seed 7 --train-fraction 0.5 --min-graphs 3 --rare-fraction 0.3 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(read_file(out), read_file(data_path("predict-uncommon.jsonl")));
  EXPECT_NE(read_file(dir.file("t.rules.json")).find("\"common\""), std::string::npos);
}

TEST(TaskData, NoGraphOnBothSides) {
  std::vector<CallGraph> corpus = load_corpus(data_path("corpus.jsonl"));
  for (uint64_t seed : {1, 2, 3, 7}) {
    for (TaskKind k : kAllKinds) {
      TaskOptions o = golden_options();
      o.seed = seed;
      TaskSet set = make_tasks(k, corpus, o);
      std::map<std::string, std::set<std::string>> splits_of;  // graph -> splits
      for (const TaskRecord& r : set.records) splits_of[r.graph].insert(r.split);
      for (const auto& [g, s] : splits_of) EXPECT_EQ(s.size(), 1u) << g << " " << task_kind_name(k);
      std::set<size_t> tr(set.train_graphs.begin(), set.train_graphs.end());
      for (size_t i : set.test_graphs) EXPECT_FALSE(tr.count(i));
      for (size_t i : set.val_graphs) EXPECT_FALSE(tr.count(i));
      EXPECT_EQ(set.train_graphs.size() + set.val_graphs.size() + set.test_graphs.size(),
                corpus.size());
      // A record's split is its graph's split.
      std::map<std::string, std::string> split_of_graph;
      for (size_t i : set.train_graphs) split_of_graph[corpus[i].trace_id] = "train";
      for (size_t i : set.val_graphs) split_of_graph[corpus[i].trace_id] = "val";
      for (size_t i : set.test_graphs) split_of_graph[corpus[i].trace_id] = "test";
      for (const TaskRecord& r : set.records) EXPECT_EQ(r.split, split_of_graph[r.graph]);
    }
  }
}

TEST(TaskData, SeededAndDeterministic) {
  std::vector<CallGraph> corpus = load_corpus(data_path("corpus.jsonl"));
  TaskOptions a = golden_options(), b = golden_options();
  b.seed = 8;
  EXPECT_EQ(make_tasks(TaskKind::kInfillCall, corpus, a).records,
            make_tasks(TaskKind::kInfillCall, corpus, a).records);
  EXPECT_NE(make_tasks(TaskKind::kInfillCall, corpus, a).train_graphs,
            make_tasks(TaskKind::kInfillCall, corpus, b).train_graphs);
}

// The answer filled into the question gives back calls of the graph.
TEST(TaskData, InfillAnswersAreTheHiddenValues) {
  std::vector<CallGraph> corpus = load_corpus(data_path("corpus.jsonl"));
  std::map<std::string, const CallGraph*> by_id;
  for (const CallGraph& g : corpus) by_id[g.trace_id] = &g;
  TaskSet set = make_tasks(TaskKind::kInfillAttribute, corpus, golden_options());
  ASSERT_FALSE(set.records.empty());
  std::set<std::string> attrs;
  for (const TaskRecord& r : set.records) {
    attrs.insert(r.attribute);
    ASSERT_NE(r.question.find(kMissing), std::string::npos);
    std::string q = r.question;
    q.replace(q.find(kMissing), kMissing.size(), r.answer);
    std::vector<QuestionLayer> layers;
    ASSERT_TRUE(parse_question(q, &layers)) << q;
    ASSERT_EQ(layers.size(), 1u);
    EXPECT_EQ(layers[0].start_node, r.caller);
    for (const EdgeText& e : layers[0].edges) {
      bool found = false;
      for (const Edge& ge : by_id.at(r.graph)->edges)
        found = found || (ge.caller == r.caller && ge.callee == e.destination &&
                          call_type_name(ge.type) == e.type && ge.start_ms == e.start_ms &&
                          ge.finish_ms == e.finish_ms);
      EXPECT_TRUE(found) << "not in graph " << r.graph << ": " << q;
    }
  }
  EXPECT_EQ(attrs, (std::set<std::string>{"destination", "type"}));

  TaskSet calls = make_tasks(TaskKind::kInfillCall, corpus, golden_options());
  ASSERT_FALSE(calls.records.empty());
  for (const TaskRecord& r : calls.records) {
    ASSERT_TRUE(r.call);
    CallCheck c = check_call(*r.call, r.answer);  // the truth passes both rules
    EXPECT_TRUE(c.paper() && c.strict()) << r.answer;
    EXPECT_NE(r.question.find("([MISSING])"), std::string::npos);
    EXPECT_EQ(r.question.find(r.answer), std::string::npos);  // not leaked
  }
}

TEST(TaskData, RulesComeFromTheTrainSideOnly) {
  std::vector<CallGraph> corpus = load_corpus(data_path("corpus.jsonl"));
  TaskOptions o = golden_options();
  TaskSet a = make_tasks(TaskKind::kPredictLatency, corpus, o);
  // Test-side graphs made ten times slower and given a new call: the rules
  // do not move.
  std::vector<CallGraph> changed = corpus;
  for (size_t i : a.test_graphs) {
    for (Edge& e : changed[i].edges) e.finish_ms *= 10;
    changed[i].edges.back().callee = "MS_99999";
  }
  TaskSet b = make_tasks(TaskKind::kPredictLatency, changed, o);
  EXPECT_EQ(a.test_graphs, b.test_graphs);
  EXPECT_EQ(a.rules.to_json(), b.rules.to_json());
  TaskSet c = make_tasks(TaskKind::kPredictUncommon, changed, o);
  EXPECT_EQ(make_tasks(TaskKind::kPredictUncommon, corpus, o).rules.to_json(), c.rules.to_json());
  // Thresholds are the nearest-rank percentile of the train graphs.
  std::map<std::string, std::vector<int64_t>> lat;
  for (size_t i : a.train_graphs) lat[corpus[i].service].push_back(corpus[i].latency());
  for (const auto& [s, th] : a.rules.threshold) EXPECT_EQ(th, nearest_rank(lat[s], 0.9)) << s;
  EXPECT_EQ(nearest_rank({5, 1, 4, 2, 3}, 0.9), 5);  // x[floor(4.5)] = x[4]
  EXPECT_EQ(nearest_rank({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9), 10);
  EXPECT_EQ(nearest_rank({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.5), 6);
}

TEST(TaskData, LabelsFollowTheRulesAndClassesAreBalanced) {
  std::vector<CallGraph> corpus = load_corpus(data_path("corpus.jsonl"));
  std::map<std::string, const CallGraph*> by_id;
  for (const CallGraph& g : corpus) by_id[g.trace_id] = &g;
  TaskSet set = make_tasks(TaskKind::kPredictLatency, corpus, golden_options());
  std::map<std::string, std::pair<int, int>> per_split;
  for (const TaskRecord& r : set.records) {
    const CallGraph& g = *by_id.at(r.graph);
    EXPECT_EQ(r.label, g.latency() >= set.rules.threshold.at(g.service) ? 1 : 0);
    EXPECT_EQ(r.text.find("finishes"), std::string::npos);  // no finish times
    (r.label ? per_split[r.split].first : per_split[r.split].second)++;
  }
  EXPECT_GT(per_split["train"].first, 0);
  for (const auto& [s, pn] : per_split) EXPECT_EQ(pn.first, pn.second) << s;

  TaskSet unc = make_tasks(TaskKind::kPredictUncommon, corpus, golden_options());
  int pos = 0;
  for (const TaskRecord& r : unc.records) {
    pos += r.label;
    // The text shows at most 5 calls, none of them rare (a positive's stops
    // before its rare call).
    std::vector<QuestionLayer> layers;
    ASSERT_TRUE(parse_question(r.text, &layers)) << r.text;
    ASSERT_EQ(layers.size(), 1u);
    EXPECT_LE(layers[0].edges.size(), 5u);
    for (const EdgeText& e : layers[0].edges) {
      Edge ge;
      ge.caller = r.caller;
      ge.callee = e.destination;
      ge.type = *parse_call_type(e.type);
      EXPECT_FALSE(unc.rules.is_rare(r.service, ge)) << r.text;
    }
  }
  EXPECT_GT(pos, 0);
  EXPECT_EQ(2 * pos, static_cast<int>(unc.records.size()));
}

TEST(TaskData, SyntheticSetsUseTheGivenRules) {
  std::vector<CallGraph> corpus = load_corpus(data_path("corpus.jsonl"));
  TaskSet real = make_tasks(TaskKind::kPredictLatency, corpus, golden_options());
  TaskRules rules = TaskRules::from_json(real.rules.to_json(), "rules.json");
  TaskOptions o = golden_options();
  o.balance = false;
  TaskSet syn = make_tasks(TaskKind::kPredictLatency, corpus, o, &rules);
  EXPECT_TRUE(syn.test_graphs.empty());
  EXPECT_EQ(syn.train_graphs.size(), corpus.size());
  EXPECT_EQ(syn.rules.to_json(), real.rules.to_json());
  for (const TaskRecord& r : syn.records) EXPECT_EQ(r.split, "train");
}

TEST(TaskData, MalformedRecordsNameTheLine) {
  TempDir dir;
  std::string good = read_file(data_path("infill-attribute.jsonl"));
  std::string first = good.substr(0, good.find('\n') + 1);
  write_file(dir.file("bad.jsonl"), first + "{\"task\":\"infill-attribute\"}\n");
  try {
    read_task_file(dir.file("bad.jsonl"));
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 2u);
  }
  write_file(dir.file("bad2.jsonl"), "not json\n");
  EXPECT_THROW(read_task_file(dir.file("bad2.jsonl")), InputError);
  write_file(dir.file("bad3.jsonl"),
             "{\"task\":\"predict-latency\",\"split\":\"train\",\"graph\":\"g\",\"service\":\"s\","
             "\"text\":\"x\",\"label\":2}\n");
  EXPECT_THROW(read_task_file(dir.file("bad3.jsonl")), InputError);
}

// --- scorers -----------------------------------------------------------------

TaskRecord attribute_record(const std::string& attribute, const std::string& answer) {
  TaskRecord r;
  r.task = TaskKind::kInfillAttribute;
  r.split = "test";
  r.attribute = attribute;
  r.answer = answer;
  return r;
}

TEST(TaskScore, AttributeExactMatchOverallAndPerAttribute) {
  TaskRecord a = attribute_record("type", "rpc"), b = attribute_record("destination", "MS_00002"),
             c = attribute_record("destination", "MS_00003");
  std::vector<const TaskRecord*> recs = {&a, &b, &c};
  TaskScore s = score_answers(recs, {" rpc\nmore text", "MS_00002", "MS_00004"});
  EXPECT_EQ(s.n, 3);
  EXPECT_EQ(s.correct, 2);
  EXPECT_EQ(s.per_attribute["type"], (std::pair<int64_t, int64_t>{1, 1}));
  EXPECT_EQ(s.per_attribute["destination"], (std::pair<int64_t, int64_t>{2, 1}));
  EXPECT_FALSE(attribute_correct(a, "http"));
  EXPECT_FALSE(attribute_correct(a, ""));
  EXPECT_FALSE(attribute_correct(a, "rpc,"));
  EXPECT_NEAR(s.accuracy(), 2.0 / 3, 1e-12);
}

TEST(TaskScore, RecoveredCallRules) {
  CallTruth t;
  t.edge_id = "2";
  t.destination = "MS_00003";
  t.type = "rpc";
  t.start_ms = 2;
  t.finish_ms = 9;
  t.children = {{3, 4}, {5, 8}};
  t.limit = 10;
  auto check = [&](const std::string& a) { return check_call(t, a); };
  // Right (any phrase order, other times that still hold the children).
  CallCheck ok = check(
      "(type is rpc,edge_id is 2,destination is MS_00003,communication starts at 3 "
      "milliseconds,communication finishes at 8 milliseconds)\n");
  EXPECT_TRUE(ok.paper());
  EXPECT_TRUE(ok.strict());
  // Wrong type.
  CallCheck wt = check(
      "(edge_id is 2,type is http,destination is MS_00003,communication starts at 2 "
      "milliseconds,communication finishes at 9 milliseconds)");
  EXPECT_TRUE(wt.parsed);
  EXPECT_FALSE(wt.type);
  EXPECT_FALSE(wt.paper());
  // Unparseable.
  for (const char* bad : {"", "MS_00003", "(edge_id is 2,type is rpc,destination is MS_00003",
                          "(edge_id is 2,type is rpc)", "(foo is bar)"}) {
    CallCheck u = check(bad);
    EXPECT_FALSE(u.parsed) << bad;
    EXPECT_FALSE(u.paper()) << bad;
  }
  // Finish before start.
  CallCheck fb = check(
      "(edge_id is 2,type is rpc,destination is MS_00003,communication starts at 9 "
      "milliseconds,communication finishes at 2 milliseconds)");
  EXPECT_TRUE(fb.parsed && fb.destination && fb.type);
  EXPECT_FALSE(fb.ordered);
  EXPECT_FALSE(fb.paper());
  // Right by the paper's rule, not strict: misses a child, or ends after the parent.
  CallCheck nc = check(
      "(edge_id is 2,type is rpc,destination is MS_00003,communication starts at 4 "
      "milliseconds,communication finishes at 9 milliseconds)");
  EXPECT_TRUE(nc.paper());
  EXPECT_FALSE(nc.contains_children);
  EXPECT_FALSE(nc.strict());
  CallCheck late = check(
      "(edge_id is 2,type is rpc,destination is MS_00003,communication starts at 2 "
      "milliseconds,communication finishes at 11 milliseconds)");
  EXPECT_TRUE(late.paper());
  EXPECT_FALSE(late.within_limit);
  EXPECT_FALSE(late.strict());

  TaskRecord r;
  r.task = TaskKind::kInfillCall;
  r.split = "test";
  r.call = t;
  std::vector<const TaskRecord*> recs = {&r, &r, &r, &r};
  TaskScore s = score_answers(recs, {"(edge_id is 2,type is rpc,destination is MS_00003,"
                                     "communication starts at 2 milliseconds,communication "
                                     "finishes at 9 milliseconds)",
                                     "garbage",
                                     "(edge_id is 2,type is rpc,destination is MS_00003,"
                                     "communication starts at 4 milliseconds,communication "
                                     "finishes at 9 milliseconds)",
                                     "(edge_id is 2,type is db,destination is MS_00003,"
                                     "communication starts at 2 milliseconds,communication "
                                     "finishes at 9 milliseconds)"});
  EXPECT_EQ(s.n, 4);
  EXPECT_EQ(s.parsed, 3);
  EXPECT_EQ(s.correct, 2);
  EXPECT_EQ(s.strict, 1);
}

TEST(TaskScore, ClassifierAccuracy) {
  std::vector<TaskRecord> rs(4);
  std::vector<const TaskRecord*> recs;
  int labels[] = {1, 0, 1, 0};
  for (int i = 0; i < 4; ++i) {
    rs[i].task = TaskKind::kPredictLatency;
    rs[i].label = labels[i];
    recs.push_back(&rs[i]);
  }
  TaskScore s = score_labels(recs, {1, 1, 0, 0});
  EXPECT_EQ(s.correct, 2);
  EXPECT_EQ(s.true_positive, 1);
  EXPECT_EQ(s.false_positive, 1);
  EXPECT_EQ(s.true_negative, 1);
  EXPECT_EQ(s.false_negative, 1);
  EXPECT_DOUBLE_EQ(s.balanced_accuracy(), 0.5);
  EXPECT_THROW(score_labels(recs, {1, 0}), std::invalid_argument);
}

TEST(TaskScore, FrequencyBaselinePerServiceCallerAndType) {
  FrequencyBaseline fb;
  CallGraph g;
  g.service = "S_1";
  // MS_1 calls MS_2 by rpc twice, MS_3 by rpc once, MS_4 by db; MS_2 has a child.
  g.edges = {{*RpcId::parse("0"), "USER", "MS_1", CallType::kHttp, 0, 20},
             {*RpcId::parse("0.1"), "MS_1", "MS_2", CallType::kRpc, 1, 9},
             {*RpcId::parse("0.1.1"), "MS_2", "MS_5", CallType::kMc, 2, 3},
             {*RpcId::parse("0.2"), "MS_1", "MS_2", CallType::kRpc, 10, 12},
             {*RpcId::parse("0.3"), "MS_1", "MS_3", CallType::kRpc, 12, 13},
             {*RpcId::parse("0.4"), "MS_1", "MS_4", CallType::kDb, 13, 14}};
  fb.add_graph(g);
  TaskRecord d = attribute_record("destination", "?");
  d.service = "S_1";
  d.caller = "MS_1";
  d.known = "rpc";
  EXPECT_EQ(fb.answer(d), "MS_2");
  d.known = "db";
  EXPECT_EQ(fb.answer(d), "MS_4");
  d.service = "S_other";  // falls back to (caller, type)
  EXPECT_EQ(fb.answer(d), "MS_4");
  TaskRecord t = attribute_record("type", "?");
  t.service = "S_1";
  t.caller = "MS_1";
  t.known = "MS_4";
  EXPECT_EQ(fb.answer(t), "db");
  t.caller = "MS_9";  // unseen: the overall most frequent type
  EXPECT_EQ(fb.answer(t), "rpc");

  // A missing call: the most frequent (destination, type) of calls with
  // children, with times that hold the child layer.
  TaskRecord c;
  c.task = TaskKind::kInfillCall;
  c.service = "S_1";
  c.caller = "MS_1";
  c.question =
      "Predict a missing edge to connect the two layers.\nstart_node:MS_1/id:S_1/caller:USER\n"
      "<edges>\n([MISSING])\n(edge_id is 2,type is rpc,destination is MS_2,communication starts "
      "at 10 milliseconds,communication finishes at 12 milliseconds)\n</edges>\nChild layer:\n"
      "id:S_1/caller:MS_1\n<edges>\n(edge_id is 1,type is mc,destination is MS_5,communication "
      "starts at 2 milliseconds,communication finishes at 3 milliseconds)\n</edges>\n";
  std::string a = fb.answer(c);
  CallTruth truth{"1", "MS_2", "rpc", 1, 9, {{2, 3}}, 20};
  EXPECT_TRUE(check_call(truth, a).strict()) << a;

  // Labels: the majority per service.
  FrequencyBaseline lb;
  for (int y : {1, 1, 0}) {
    TaskRecord r;
    r.task = TaskKind::kPredictLatency;
    r.service = "S_1";
    r.label = y;
    lb.add_record(r);
  }
  TaskRecord q;
  q.task = TaskKind::kPredictLatency;
  q.service = "S_1";
  EXPECT_EQ(lb.predict(q), 1);
}

TEST(TaskScore, FrequencyBaselineLearnsFromTrainRecords) {
  std::vector<CallGraph> corpus = load_corpus(data_path("corpus.jsonl"));
  TaskSet set = make_tasks(TaskKind::kInfillAttribute, corpus, golden_options());
  TaskScore s = frequency_baseline_score(set.records, {});
  EXPECT_EQ(s.n, static_cast<int64_t>(split_records(set.records, "test").size()));
  EXPECT_GT(s.correct, 0);
  TaskScore all = frequency_baseline_score(set.records, corpus);
  EXPECT_EQ(all.n, s.n);
  EXPECT_GT(all.correct, 0);
  nlohmann::json res = task_results(set.records, {{"freq", s}});
  EXPECT_NE(format_task_table(res).find("freq"), std::string::npos);
}

TEST(TaskReport, TablesPerTaskEscaped) {
  std::vector<CallGraph> corpus = load_corpus(data_path("corpus.jsonl"));
  TaskSet set = make_tasks(TaskKind::kInfillCall, corpus, golden_options());
  nlohmann::json res =
      task_results(set.records, {{"<model & co>", frequency_baseline_score(set.records, {})}});
  std::string page = task_report_page({res}, "t");
  EXPECT_NE(page.find("&lt;model &amp; co&gt;"), std::string::npos);
  EXPECT_EQ(page.find("<model"), std::string::npos);
  EXPECT_NE(page.find("<th>strict</th>"), std::string::npos);
  EXPECT_THROW(task_report_section({nlohmann::json::array()}), std::invalid_argument);
}

}  // namespace
}  // namespace tracelm
