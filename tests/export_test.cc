// OTLP JSON and Jaeger JSON export: round trips on real and hand-made graphs,
// the ids and parent links, time mapping, bad inputs, and the CLI.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "export/jaeger.h"
#include "export/otlp.h"
#include "ingest/ingest.h"
#include "test_util.h"

namespace tracelm {
namespace {

using nlohmann::json;

const char* kTrainCsv = "data/alibaba-v2022/callgraphs-train.csv";

std::vector<CallGraph> real_graphs() {
  std::vector<CallGraph> out;
  ingest({testing::shared_path(kTrainCsv)}, {},
         {[&](CallGraph&& g) { out.push_back(std::move(g)); }, nullptr, nullptr});
  return out;
}

Edge edge(const char* id, const char* caller, const char* callee, CallType t, int64_t s,
          int64_t f) {
  return Edge{*RpcId::parse(id), caller, callee, t, s, f};
}

std::vector<CallGraph> hand_graphs() {
  CallGraph a;
  a.service = "S_000000001";
  a.trace_id = "0b1234567890";
  a.edges = {edge("0", "USER", "MS_1", CallType::kHttp, 0, 20),
             edge("0.1", "MS_1", "MS_2", CallType::kRpc, 1, 9),
             edge("0.1.1", "MS_2", "MS_3", CallType::kDb, 2, 3),
             edge("0.1.2", "MS_2", "MS_4", CallType::kMc, 3, 4),
             edge("0.2", "MS_1", "MS_2", CallType::kMq, 10, 12)};
  CallGraph b;  // generated: no trace id; odd strings; an orphan; a backwards edge
  b.service = "S_\"q\\uo\"te\n";
  b.edges = {edge("0", "USER", "MS_é", CallType::kHttp, 2, 7),
             edge("0.1", "MS_é", "MS_\t5", CallType::kUnknown, 7, 3),
             edge("0.3.1", "MS_9", "MS_1", CallType::kRpc, 4, 5)};
  CallGraph c;  // same trace id as a: must stay a separate trace
  c.service = "S_000000001";
  c.trace_id = "0b1234567890";
  c.edges = {edge("0", "USER", "MS_1", CallType::kHttp, 0, 1)};
  return {a, b, c};
}

bool is_hex(const std::string& s, size_t n) {
  if (s.size() != n || s.find_first_not_of("0123456789abcdef") != std::string::npos) return false;
  return s.find_first_not_of('0') != std::string::npos;
}

std::string attr(const json& span, const std::string& key) {
  for (const json& a : span["attributes"])
    if (a["key"] == key) return a["value"]["stringValue"].get<std::string>();
  return "<absent>";
}

std::string tag(const json& span, const std::string& key) {
  for (const json& a : span["tags"])
    if (a["key"] == key) return a["value"].get<std::string>();
  return "<absent>";
}

// Spans of an OTLP request with their resource's service.name.
std::vector<std::pair<std::string, json>> otlp_spans(const json& req) {
  std::vector<std::pair<std::string, json>> out;
  for (const json& rs : req["resourceSpans"]) {
    std::string service = "<none>";
    for (const json& a : rs["resource"]["attributes"])
      if (a["key"] == "service.name") service = a["value"]["stringValue"];
    for (const json& ss : rs["scopeSpans"])
      for (const json& sp : ss["spans"]) out.emplace_back(service, sp);
  }
  return out;
}

// Checks ids, parent links and times of an OTLP export of `graphs`.
void check_otlp_structure(const std::vector<CallGraph>& graphs, const std::string& text,
                          int64_t base) {
  json req = json::parse(text);
  auto spans = otlp_spans(req);
  size_t edges = 0;
  for (const auto& g : graphs) edges += g.edges.size();
  ASSERT_EQ(spans.size(), edges);
  // trace id -> (rpc id -> span id), and span id -> parent
  std::map<std::string, std::map<std::string, std::string>> by_trace;
  std::map<std::string, std::set<std::string>> span_ids;
  for (const auto& [service, sp] : spans) {
    std::string tid = sp["traceId"], sid = sp["spanId"];
    EXPECT_TRUE(is_hex(tid, 32)) << tid;
    EXPECT_TRUE(is_hex(sid, 16)) << sid;
    EXPECT_TRUE(span_ids[tid].insert(sid).second) << "span id repeats: " << sid;
    EXPECT_EQ(service, attr(sp, "tracelm.callee"));
    by_trace[tid][attr(sp, "rpc.id")] = sid;
  }
  EXPECT_EQ(by_trace.size(), graphs.size());
  std::set<std::string> graph_keys;  // "trace|rpc id|start" of every edge
  for (const auto& [service, sp] : spans) {
    std::string tid = sp["traceId"];
    auto id = *RpcId::parse(attr(sp, "rpc.id"));
    auto parent = id.parent();
    if (parent && by_trace[tid].count(parent->str())) {
      EXPECT_EQ(sp.value("parentSpanId", ""), by_trace[tid][parent->str()]) << id.str();
    } else {
      EXPECT_FALSE(sp.contains("parentSpanId")) << id.str();
    }
    int64_t start = std::stoll(sp["startTimeUnixNano"].get<std::string>());
    int64_t end = std::stoll(sp["endTimeUnixNano"].get<std::string>());
    EXPECT_EQ(start % 1'000'000, 0);
    EXPECT_EQ(end % 1'000'000, 0);
    EXPECT_GE(start / 1'000'000, base - 10);  // clock skew may start a call slightly early
    EXPECT_TRUE(sp["kind"].is_number_integer());
    EXPECT_EQ(sp["name"], attr(sp, "tracelm.type") + " " + attr(sp, "tracelm.caller") + "->" +
                              attr(sp, "tracelm.callee"));
  }
}

TEST(Export, OtlpRoundTripOnHandMadeGraphs) {
  auto graphs = hand_graphs();
  std::string text = to_otlp_json(graphs);
  std::vector<CallGraph> back;
  std::string err;
  ASSERT_TRUE(parse_otlp_json(text, &back, &err)) << err;
  EXPECT_EQ(back, graphs);  // same order, same content, trace ids included
  check_otlp_structure(graphs, text, kDefaultBaseEpochMs);

  // JSON Lines: one request per graph per line, the same ids.
  std::string lines = to_otlp_json_lines(graphs);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 3);
  back.clear();
  ASSERT_TRUE(parse_otlp_json(lines, &back, &err)) << err;
  EXPECT_EQ(back, graphs);
  std::istringstream in(lines);
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(json::parse(first)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"],
            json::parse(text)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]);
}

TEST(Export, OtlpTimesAndAttributes) {
  auto graphs = hand_graphs();
  json req = json::parse(to_otlp_json(graphs, 1'000));
  auto spans = otlp_spans(req);
  const json& root = spans[0].second;
  EXPECT_EQ(spans[0].first, "MS_1");
  EXPECT_EQ(root["startTimeUnixNano"], "1000000000");  // (1000 + 0) ms
  EXPECT_EQ(root["endTimeUnixNano"], "1020000000");    // (1000 + 20) ms
  EXPECT_EQ(root["kind"], 2);
  EXPECT_EQ(root["name"], "http USER->MS_1");
  EXPECT_FALSE(root.contains("parentSpanId"));
  EXPECT_EQ(attr(root, "rpc.id"), "0");
  EXPECT_EQ(attr(root, "tracelm.caller"), "USER");
  EXPECT_EQ(attr(root, "tracelm.type"), "http");
  EXPECT_EQ(attr(root, "tracelm.service"), "S_000000001");
  EXPECT_EQ(attr(root, "tracelm.trace_id"), "0b1234567890");
  EXPECT_EQ(req["resourceSpans"][0]["scopeSpans"][0]["scope"]["name"], "tracelm");
  std::map<std::string, json> by_rpc;
  for (const auto& [service, sp] : spans)
    if (attr(sp, "tracelm.service") == "S_000000001" && by_rpc.count(attr(sp, "rpc.id")) == 0)
      by_rpc[attr(sp, "rpc.id")] = sp;
  EXPECT_EQ(by_rpc["0.2"]["kind"], 5);  // mq: consumer
  EXPECT_EQ(attr(by_rpc["0.1.2"], "db.system"), "memcached");
  EXPECT_EQ(attr(by_rpc["0.1.1"], "db.system"), "<absent>");
  // Graph b: no trace id attribute; the unknown type is internal.
  for (const auto& [service, sp] : spans)
    if (attr(sp, "tracelm.service") != "S_000000001") {
      EXPECT_EQ(attr(sp, "tracelm.trace_id"), "<absent>");
      if (attr(sp, "rpc.id") == "0.1") EXPECT_EQ(sp["kind"], 1);
    }
  // Reading with the wrong base shifts the times; with the right one it is exact.
  std::vector<CallGraph> back;
  std::string err;
  ASSERT_TRUE(parse_otlp_json(to_otlp_json(graphs, 1'000), &back, &err, 1'000)) << err;
  EXPECT_EQ(back, graphs);
  back.clear();
  ASSERT_TRUE(parse_otlp_json(to_otlp_json(graphs, 1'000), &back, &err, 0)) << err;
  EXPECT_EQ(back[0].edges[0].start_ms, 1'000);
}

TEST(Export, JaegerRoundTripAndStructure) {
  auto graphs = hand_graphs();
  std::string text = to_jaeger_json(graphs);
  std::vector<CallGraph> back;
  std::string err;
  ASSERT_TRUE(parse_jaeger_json(text, &back, &err)) << err;
  EXPECT_EQ(back, graphs);

  json doc = json::parse(text);
  ASSERT_EQ(doc["data"].size(), 3u);
  json otlp = json::parse(to_otlp_json(graphs));
  auto ospans = otlp_spans(otlp);
  std::set<std::string> otlp_ids;
  for (const auto& [s, sp] : ospans)
    otlp_ids.insert(sp["traceId"].get<std::string>() + "/" + sp["spanId"].get<std::string>());
  for (size_t t = 0; t < graphs.size(); ++t) {
    const json& tr = doc["data"][t];
    const CallGraph& g = graphs[t];
    EXPECT_TRUE(is_hex(tr["traceID"], 32));
    ASSERT_EQ(tr["spans"].size(), g.edges.size());
    std::set<std::string> callees;
    for (const Edge& e : g.edges) callees.insert(e.callee);
    EXPECT_EQ(tr["processes"].size(), callees.size());
    std::map<std::string, std::string> span_of;  // rpc id -> span id
    std::set<std::string> ids;
    for (const json& sp : tr["spans"]) {
      span_of.emplace(tag(sp, "rpc.id"), sp["spanID"]);
      EXPECT_TRUE(ids.insert(sp["spanID"].get<std::string>()).second);
      EXPECT_TRUE(is_hex(sp["spanID"], 16));
      EXPECT_EQ(sp["traceID"], tr["traceID"]);
      // The same ids as the OTLP export.
      EXPECT_TRUE(
          otlp_ids.count(sp["traceID"].get<std::string>() + "/" + sp["spanID"].get<std::string>()));
      EXPECT_EQ(tr["processes"][sp["processID"].get<std::string>()]["serviceName"],
                tag(sp, "tracelm.callee"));
    }
    for (size_t i = 0; i < g.edges.size(); ++i) {
      const json& sp = tr["spans"][i];
      const Edge& e = g.edges[i];
      EXPECT_EQ(sp["startTime"], (kDefaultBaseEpochMs + e.start_ms) * 1000);
      EXPECT_EQ(sp["duration"], (e.finish_ms - e.start_ms) * 1000);
      EXPECT_EQ(sp["operationName"],
                std::string(call_type_name(e.type)) + " " + e.caller + "->" + e.callee);
      auto parent = e.id.parent();
      if (parent && span_of.count(parent->str())) {
        ASSERT_EQ(sp["references"].size(), 1u);
        EXPECT_EQ(sp["references"][0]["refType"], "CHILD_OF");
        EXPECT_EQ(sp["references"][0]["spanID"], span_of[parent->str()]);
      } else {
        EXPECT_TRUE(sp["references"].empty());
      }
    }
  }
  EXPECT_EQ(tag(doc["data"][0]["spans"][4], "span.kind"), "consumer");
  EXPECT_EQ(tag(doc["data"][0]["spans"][0], "span.kind"), "server");
}

TEST(Export, RealGraphsRoundTrip) {
  REQUIRE_SHARED(kTrainCsv);
  auto graphs = real_graphs();
  ASSERT_EQ(graphs.size(), 1014u);
  std::string otlp = to_otlp_json(graphs);
  std::vector<CallGraph> back;
  std::string err;
  ASSERT_TRUE(parse_otlp_json(otlp, &back, &err)) << err;
  ASSERT_EQ(back.size(), graphs.size());
  for (size_t i = 0; i < graphs.size(); ++i) {
    EXPECT_TRUE(back[i].same_content(graphs[i])) << i;
    EXPECT_EQ(back[i].trace_id, graphs[i].trace_id);
  }
  check_otlp_structure(graphs, otlp, kDefaultBaseEpochMs);

  back.clear();
  ASSERT_TRUE(parse_otlp_json(to_otlp_json_lines(graphs, 42), &back, &err, 42)) << err;
  EXPECT_EQ(back, graphs);

  back.clear();
  ASSERT_TRUE(parse_jaeger_json(to_jaeger_json(graphs), &back, &err)) << err;
  EXPECT_EQ(back, graphs);
}

TEST(Export, StreamingWritersMatch) {
  auto graphs = hand_graphs();
  graphs.insert(graphs.begin() + 1, CallGraph{});  // no edges: not written, index still counts
  std::string out;
  OtlpJsonWriter w;
  for (const auto& g : graphs) w.add(g, out);
  w.finish(out);
  EXPECT_EQ(out, to_otlp_json(graphs));
  std::vector<CallGraph> back;
  std::string err;
  ASSERT_TRUE(parse_otlp_json(out, &back, &err)) << err;
  EXPECT_EQ(back.size(), 3u);
  std::string j;
  JaegerJsonWriter jw;
  for (const auto& g : graphs) jw.add(g, j);
  jw.finish(j);
  EXPECT_EQ(j, to_jaeger_json(graphs));
  // Nothing at all is still a valid document.
  back.clear();
  ASSERT_TRUE(parse_otlp_json(to_otlp_json({}), &back, &err)) << err;
  ASSERT_TRUE(parse_jaeger_json(to_jaeger_json({}), &back, &err)) << err;
  EXPECT_TRUE(back.empty());
}

TEST(Export, WritersRejectTimesOutOfRange) {
  auto graphs = hand_graphs();
  EXPECT_THROW(to_otlp_json(graphs, -1), std::out_of_range);
  EXPECT_THROW(to_jaeger_json(graphs, kMaxEpochMs + 1), std::out_of_range);
  graphs[1].edges[1].finish_ms = int64_t{1} << 60;
  EXPECT_THROW(to_otlp_json(graphs), std::out_of_range);
  EXPECT_THROW(to_jaeger_json(graphs), std::out_of_range);
}

// One span, as the OTLP writer emits it; `span` replaces it when given.
std::string otlp_doc(const std::string& span) {
  return R"({"resourceSpans":[{"resource":{},"scopeSpans":[{"scope":{},"spans":[)" + span +
         "]}]}]}";
}
const char* kGoodSpan =
    R"({"traceId":"0123456789abcdef0123456789abcdef","spanId":"00000000000000aa",)"
    R"("startTimeUnixNano":"1700000000001000000","endTimeUnixNano":1700000000003000000,)"
    R"("attributes":[{"key":"rpc.id","value":{"stringValue":"0"}},)"
    R"({"key":"tracelm.caller","value":{"stringValue":"USER"}},)"
    R"({"key":"tracelm.callee","value":{"stringValue":"MS_1"}},)"
    R"({"key":"tracelm.type","value":{"stringValue":"HTTP"}},)"
    R"({"key":"tracelm.service","value":{"stringValue":"S_1"}},)"
    R"({"key":"other","value":{"intValue":"3"}}]})";

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  size_t p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  return s.replace(p, from.size(), to);
}

std::string otlp_error(const std::string& text) {
  std::vector<CallGraph> gs;
  std::string err;
  EXPECT_FALSE(parse_otlp_json(text, &gs, &err)) << text;
  return err;
}

TEST(Export, OtlpReaderAcceptsOtherProducersSpans) {
  std::vector<CallGraph> gs;
  std::string err;
  // Upper-case hex, an integer time, a sub-millisecond part, an extra attribute.
  std::string span = replaced(kGoodSpan, "\"1700000000001000000\"", "\"1700000000001999999\"");
  span = replaced(span, "0123456789abcdef0123", "0123456789ABCDEF0123");
  ASSERT_TRUE(parse_otlp_json(otlp_doc(span), &gs, &err)) << err;
  ASSERT_EQ(gs.size(), 1u);
  EXPECT_EQ(gs[0].service, "S_1");
  EXPECT_EQ(gs[0].trace_id, "");
  EXPECT_EQ(gs[0].edges[0], edge("0", "USER", "MS_1", CallType::kHttp, 1, 3));
}

TEST(Export, OtlpBadInputsGiveErrors) {
  EXPECT_EQ(otlp_error("not json"), "byte 0: expected a JSON object at the top level");
  EXPECT_EQ(otlp_error("{\"resourceSpans\":[}"), "byte 18: '}' closes '['");
  EXPECT_EQ(otlp_error("{\"resourceSpans\":[1,]}"), "not valid JSON");
  EXPECT_NE(otlp_error("{\"data\":[]}").find("resourceSpans"), std::string::npos);
  EXPECT_NE(otlp_error(otlp_doc(kGoodSpan).substr(0, 100)).find("truncated"), std::string::npos);
  std::string deep = std::string(65, '[') + std::string(65, ']');
  EXPECT_NE(otlp_error(deep).find("nested deeper than 64"), std::string::npos);
  std::string ok64 = "{\"resourceSpans\":[]}" + std::string(64, '[') + std::string(64, ']');
  EXPECT_NE(otlp_error(ok64).find("request 2: expected {\"resourceSpans\""), std::string::npos);

  // Each names the span (its path and spanId).
  std::string where = "resourceSpans[0].scopeSpans[0].spans[0] (spanId 00000000000000aa): ";
  EXPECT_EQ(otlp_error(otlp_doc(replaced(
                kGoodSpan, "{\"key\":\"rpc.id\",\"value\":{\"stringValue\":\"0\"}},", ""))),
            where + "missing attribute \"rpc.id\"");
  EXPECT_EQ(otlp_error(otlp_doc(replaced(kGoodSpan, "\"1700000000001000000\"", "\"17e17\""))),
            where + "\"startTimeUnixNano\" must be a decimal string of nanoseconds (0 to 2^63-1)");
  EXPECT_NE(otlp_error(otlp_doc(replaced(kGoodSpan, "1700000000003000000", "-1")))
                .find("endTimeUnixNano"),
            std::string::npos);
  EXPECT_NE(otlp_error(otlp_doc(replaced(kGoodSpan, "1700000000003000000", "1.5")))
                .find("endTimeUnixNano"),
            std::string::npos);
  EXPECT_NE(otlp_error(otlp_doc(replaced(kGoodSpan, "\"1700000000001000000\"",
                                         "\"99999999999999999999\"")))
                .find("startTimeUnixNano"),
            std::string::npos);
  EXPECT_EQ(otlp_error(
                otlp_doc(replaced(kGoodSpan, "\"stringValue\":\"0\"", "\"stringValue\":\"0.01\""))),
            where + "rpc.id \"0.01\" is not dot-decimal");
  EXPECT_EQ(
      otlp_error(otlp_doc(replaced(kGoodSpan, "\"stringValue\":\"S_1\"", "\"intValue\":\"1\""))),
      where + "attribute \"tracelm.service\" must have a stringValue");
  EXPECT_NE(otlp_error(otlp_doc(replaced(kGoodSpan, "00000000000000aa", "0000000000000000")))
                .find("\"spanId\" must be 16 hex digits"),
            std::string::npos);
  EXPECT_NE(
      otlp_error(otlp_doc(replaced(kGoodSpan, "0123456789abcdef0123", "0123456789abcdefg123")))
          .find("\"traceId\" must be 32 hex digits"),
      std::string::npos);
  EXPECT_NE(
      otlp_error(otlp_doc(replaced(kGoodSpan, "\"spanId\"", "\"parentSpanId\":\"xyz\",\"spanId\"")))
          .find("parentSpanId"),
      std::string::npos);
  // Two spans with one spanId, or disagreeing on the service.
  EXPECT_EQ(otlp_error(otlp_doc(std::string(kGoodSpan) + "," + kGoodSpan)),
            "resourceSpans[0].scopeSpans[0].spans[1] (spanId 00000000000000aa): spanId repeats "
            "within the trace");
  std::string other =
      replaced(replaced(kGoodSpan, "00000000000000aa", "00000000000000bb"), "\"S_1\"", "\"S_2\"");
  EXPECT_NE(
      otlp_error(otlp_doc(std::string(kGoodSpan) + "," + other)).find("differs from the trace's"),
      std::string::npos);
}

TEST(Export, JaegerBadInputsGiveErrors) {
  auto graphs = hand_graphs();
  std::string text = to_jaeger_json(graphs);
  auto jaeger_error = [](const std::string& t) {
    std::vector<CallGraph> gs;
    std::string err;
    EXPECT_FALSE(parse_jaeger_json(t, &gs, &err)) << t.substr(0, 200);
    return err;
  };
  EXPECT_NE(jaeger_error(to_otlp_json(graphs)).find("expected {\"data\""), std::string::npos);
  json doc = json::parse(text);
  std::string span0 =
      "data[0].spans[0] (spanID " + doc["data"][0]["spans"][0]["spanID"].get<std::string>() + "): ";
  json bad = doc;
  bad["data"][0]["spans"][0]["startTime"] = "1700000000000000";
  EXPECT_EQ(jaeger_error(bad.dump()),
            span0 + "\"startTime\" must be an integer of microseconds in [0, 9223372036854999]");
  bad = doc;
  bad["data"][0]["spans"][0]["duration"] = 1.5;
  EXPECT_NE(jaeger_error(bad.dump()).find(span0 + "\"duration\""), std::string::npos);
  bad = doc;
  bad["data"][0]["spans"][0]["tags"].erase(0);
  EXPECT_EQ(jaeger_error(bad.dump()), span0 + "missing attribute \"rpc.id\"");
  bad = doc;
  bad["data"][0]["spans"][0]["traceID"] = "0000000000000001";
  EXPECT_EQ(jaeger_error(bad.dump()), span0 + "\"traceID\" differs from the trace's");
  bad = doc;
  bad["data"][0]["traceID"] = 7;
  EXPECT_NE(jaeger_error(bad.dump()).find("data[0]: \"traceID\""), std::string::npos);
  EXPECT_NE(jaeger_error(std::string(100, '{')).find("nested deeper"), std::string::npos);

  // A 64-bit trace id (16 hex, as Jaeger writes them) is accepted.
  json ok = doc;
  ok["data"] = json::array({doc["data"][2]});
  ok["data"][0]["traceID"] = "00000000000000ff";
  for (json& sp : ok["data"][0]["spans"]) sp["traceID"] = "00000000000000ff";
  std::vector<CallGraph> gs;
  std::string err;
  ASSERT_TRUE(parse_jaeger_json(ok.dump(2), &gs, &err)) << err;
  EXPECT_EQ(gs, std::vector<CallGraph>{graphs[2]});
}

TEST(Export, CliWritesOtlpAndJaeger) {
  testing::TempDir tmp;
  auto r = testing::run_tracelm("sample -o " + tmp.file("raw.csv") + " --traces 60");
  ASSERT_EQ(r.status, 0) << r.out;
  r = testing::run_tracelm("ingest " + tmp.file("raw.csv") + " -o " + tmp.file("c.jsonl") + " -q");
  ASSERT_EQ(r.status, 0) << r.out;
  auto corpus = load_corpus(tmp.file("c.jsonl"));
  ASSERT_FALSE(corpus.empty());
  size_t edges = 0;
  for (const auto& g : corpus) edges += g.edges.size();

  r = testing::run_tracelm("export " + tmp.file("c.jsonl") + " --format otlp -o " +
                           tmp.file("x.json"));
  ASSERT_EQ(r.status, 0) << r.out;
  std::string text = testing::read_file(tmp.file("x.json"));
  EXPECT_EQ(otlp_spans(json::parse(text)).size(), edges);
  std::vector<CallGraph> back;
  std::string err;
  ASSERT_TRUE(parse_otlp_json(text, &back, &err)) << err;
  EXPECT_EQ(back, corpus);

  r = testing::run_tracelm("export " + tmp.file("c.jsonl") +
                           " --format otlp-jsonl --base-ms 5 -o " + tmp.file("x.jsonl"));
  ASSERT_EQ(r.status, 0) << r.out;
  text = testing::read_file(tmp.file("x.jsonl"));
  EXPECT_EQ(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')), corpus.size());
  back.clear();
  ASSERT_TRUE(parse_otlp_json(text, &back, &err, 5)) << err;
  EXPECT_EQ(back, corpus);

  r = testing::run_tracelm("export " + tmp.file("c.jsonl") + " --format jaeger -o " +
                           tmp.file("j.json"));
  ASSERT_EQ(r.status, 0) << r.out;
  text = testing::read_file(tmp.file("j.json"));
  EXPECT_EQ(json::parse(text)["data"].size(), corpus.size());
  back.clear();
  ASSERT_TRUE(parse_jaeger_json(text, &back, &err)) << err;
  EXPECT_EQ(back, corpus);

  r = testing::run_tracelm("export " + tmp.file("c.jsonl") + " --format otlp --base-ms -5 -o " +
                           tmp.file("bad.json"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("base epoch -5 ms is outside"), std::string::npos) << r.out;
}

TEST(Export, CliOtlpOnRealData) {
  REQUIRE_SHARED(kTrainCsv);
  testing::TempDir tmp;
  auto r = testing::run_tracelm("export '" + testing::shared_path(kTrainCsv) +
                                "' --format otlp -o " + tmp.file("x.json"));
  ASSERT_EQ(r.status, 0) << r.out;
  json req = json::parse(testing::read_file(tmp.file("x.json")));
  EXPECT_EQ(otlp_spans(req).size(), 4456u);
}

}  // namespace
}  // namespace tracelm
