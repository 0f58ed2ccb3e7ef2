// OTLP JSON and Jaeger JSON export: the span layout of an instrumented system
// (CLIENT/SERVER pairs, database CLIENT spans, names, attributes, traces
// spread over time), round trips through the span importer on hand-made and
// real graphs, bad timings, and the CLI.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/validate.h"
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

// Valid graphs: one of every call type; a self-call and a db call with
// children; an operation-mode graph.
std::vector<CallGraph> hand_graphs() {
  CallGraph a;
  a.service = "S_000000001";
  a.trace_id = "0b1234567890";
  a.edges = {edge("0", "USER", "MS_1", CallType::kHttp, 0, 20),
             edge("0.1", "MS_1", "MS_2", CallType::kRpc, 1, 9),
             edge("0.1.1", "MS_2", "MS_3", CallType::kDb, 2, 3),
             edge("0.1.2", "MS_2", "MS_4", CallType::kMc, 3, 4),
             edge("0.2", "MS_1", "MS_2", CallType::kMq, 10, 12)};
  CallGraph b;  // generated: no trace id; a self-call; a db callee that calls on
  b.service = "S_\"q\\uo\"te";
  b.edges = {edge("0", "USER", "MS_5", CallType::kRpc, 0, 7),
             edge("0.1", "MS_5", "MS_5", CallType::kRpc, 1, 6),
             edge("0.1.1", "MS_5", "MS_6", CallType::kDb, 2, 5),
             edge("0.1.1.1", "MS_6", "MS_7", CallType::kHttp, 3, 4)};
  CallGraph c;  // --node operation
  c.service = "gateway#GET_|home";
  c.trace_id = "c0ffee";
  c.edges = {
      edge("0", "USER", "gateway#GET_|home", CallType::kHttp, 0, 30),
      edge("0.1", "gateway#GET_|home", "cart#hipstershop.CartService|GetCart", CallType::kRpc, 2,
           10),
      edge("0.1.1", "cart#hipstershop.CartService|GetCart", "redis#HGET", CallType::kMc, 3, 4),
      edge("0.2", "gateway#GET_|home", "orders#POST_|api|v1|orders", CallType::kHttp, 12, 28)};
  return {a, b, c};
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

struct OSpan {
  std::string service;
  json span;
};

// Spans of an OTLP request with their resource's service.name.
std::vector<OSpan> otlp_spans(const json& req) {
  std::vector<OSpan> out;
  for (const json& rs : req["resourceSpans"]) {
    std::string service = "<none>";
    for (const json& a : rs["resource"]["attributes"])
      if (a["key"] == "service.name") service = a["value"]["stringValue"];
    for (const json& ss : rs["scopeSpans"])
      for (const json& sp : ss["spans"]) out.push_back({service, sp});
  }
  return out;
}

std::vector<OSpan> otlp_spans_of_lines(const std::string& lines) {
  std::vector<OSpan> out;
  std::istringstream in(lines);
  std::string line;
  while (std::getline(in, line))
    for (auto& s : otlp_spans(json::parse(line))) out.push_back(std::move(s));
  return out;
}

// The checks every OTLP export must pass, for graphs `graphs` (all exported).
void check_layout(const std::vector<CallGraph>& graphs, const std::vector<OSpan>& spans) {
  std::map<std::string, std::map<std::string, const OSpan*>> by_id;  // trace -> span id -> span
  std::map<std::string, std::vector<const OSpan*>> by_rpc;  // "trace/rpc id" -> callee-side
  std::map<std::string, int64_t> trace_start;
  for (const OSpan& s : spans) {
    std::string tid = s.span["traceId"], sid = s.span["spanId"];
    EXPECT_EQ(tid.size(), 32u);
    EXPECT_EQ(sid.size(), 16u);
    EXPECT_TRUE(by_id[tid].emplace(sid, &s).second) << "span id repeats: " << sid;
    for (const json& a : s.span["attributes"]) EXPECT_NE(a["key"], "rpc.id");
    if (attr(s.span, "tracelm.rpc_id") != "<absent>")
      by_rpc[tid + "/" + attr(s.span, "tracelm.rpc_id")].push_back(&s);
    std::string name = s.span["name"];
    EXPECT_EQ(name.find("->"), std::string::npos) << name;
    int64_t start = std::stoll(s.span["startTimeUnixNano"].get<std::string>());
    auto [it, fresh] = trace_start.emplace(tid, start);
    if (!fresh) it->second = std::min(it->second, start);
  }
  ASSERT_EQ(trace_start.size(), graphs.size());
  std::set<int64_t> starts;
  for (auto& [t, s] : trace_start) starts.insert(s);
  EXPECT_EQ(starts.size(), graphs.size()) << "traces must start at distinct times";
  size_t pairs = 0, stores = 0;
  for (const OSpan& s : spans) {
    std::string tid = s.span["traceId"];
    int kind = s.span["kind"];
    if (!s.span.contains("parentSpanId")) {
      EXPECT_EQ(attr(s.span, "tracelm.rpc_id"), "0");
      EXPECT_TRUE(kind == 2 || kind == 5) << kind;
      continue;
    }
    auto parent = by_id[tid].find(s.span["parentSpanId"].get<std::string>());
    ASSERT_NE(parent, by_id[tid].end());
    int pkind = parent->second->span["kind"];
    if (kind == 2 || kind == 5) {  // SERVER / CONSUMER: child of its CLIENT / PRODUCER
      EXPECT_EQ(pkind, kind == 2 ? 3 : 4);
      EXPECT_EQ(parent->second->span["name"], s.span["name"]);
      EXPECT_EQ(parent->second->span["startTimeUnixNano"], s.span["startTimeUnixNano"]);
      EXPECT_EQ(parent->second->span["endTimeUnixNano"], s.span["endTimeUnixNano"]);
      ++pairs;
    } else {  // CLIENT / PRODUCER: child of the caller's SERVER / CONSUMER span
      EXPECT_TRUE(kind == 3 || kind == 4) << kind;
      EXPECT_TRUE(pkind == 2 || pkind == 5) << pkind;
      EXPECT_EQ(parent->second->service, s.service);  // the caller's resource
      if (attr(s.span, "db.system.name") != "<absent>") {
        EXPECT_NE(attr(s.span, "peer.service"), "<absent>");
        stores += attr(s.span, "tracelm.rpc_id") != "<absent>";
      }
    }
  }
  size_t edges = 0, expect_stores = 0;
  for (const CallGraph& g : graphs) {
    edges += g.edges.size();
    GraphIndex ix = g.index();
    for (size_t i = 0; i < g.edges.size(); ++i)
      expect_stores += (g.edges[i].type == CallType::kDb || g.edges[i].type == CallType::kMc) &&
                       ix.children[i].empty() && i != 0;
  }
  EXPECT_EQ(stores, expect_stores);
  EXPECT_EQ(pairs + stores + graphs.size(), edges);
  EXPECT_EQ(spans.size(), 2 * pairs + stores + graphs.size());
}

TEST(Export, OtlpSpanLayoutOfOneGraph) {
  auto graphs = hand_graphs();
  json req = json::parse(to_otlp_json({graphs[0]}, TraceTiming{1'000, 10}));
  auto spans = otlp_spans(req);
  ASSERT_EQ(spans.size(), 7u);  // root + rpc pair + db + mc + mq pair
  std::map<std::string, const OSpan*> by_name_kind;
  for (const OSpan& s : spans)
    by_name_kind[s.span["name"].get<std::string>() + "/" +
                 std::to_string(s.span["kind"].get<int>())] = &s;
  const OSpan* root = by_name_kind.at("http MS_1/2");
  EXPECT_EQ(root->service, "MS_1");
  EXPECT_FALSE(root->span.contains("parentSpanId"));
  EXPECT_EQ(root->span["startTimeUnixNano"], "1000000000");  // start 1000 ms
  EXPECT_EQ(root->span["endTimeUnixNano"], "1020000000");
  EXPECT_EQ(attr(root->span, "http.request.method"), "_OTHER");
  EXPECT_EQ(attr(root->span, "tracelm.rpc_id"), "0");
  EXPECT_EQ(attr(root->span, "tracelm.service"), "S_000000001");
  EXPECT_EQ(attr(root->span, "tracelm.trace_id"), "0b1234567890");
  const OSpan* rpc_client = by_name_kind.at("rpc MS_2/3");
  const OSpan* rpc_server = by_name_kind.at("rpc MS_2/2");
  EXPECT_EQ(rpc_client->service, "MS_1");
  EXPECT_EQ(rpc_server->service, "MS_2");
  EXPECT_EQ(rpc_client->span["parentSpanId"], root->span["spanId"]);
  EXPECT_EQ(rpc_server->span["parentSpanId"], rpc_client->span["spanId"]);
  EXPECT_EQ(attr(rpc_client->span, "rpc.system.name"), "_OTHER");
  EXPECT_EQ(attr(rpc_client->span, "server.address"), "MS_2");
  EXPECT_EQ(attr(rpc_client->span, "tracelm.rpc_id"), "<absent>");
  EXPECT_EQ(attr(rpc_server->span, "tracelm.rpc_id"), "0.1");
  EXPECT_EQ(rpc_client->span["startTimeUnixNano"], "1001000000");
  const OSpan* db = by_name_kind.at("db MS_3/3");
  EXPECT_EQ(db->service, "MS_2");
  EXPECT_EQ(db->span["parentSpanId"], rpc_server->span["spanId"]);
  EXPECT_EQ(attr(db->span, "db.system.name"), "other_sql");
  EXPECT_EQ(attr(db->span, "peer.service"), "MS_3");
  EXPECT_EQ(attr(db->span, "tracelm.rpc_id"), "0.1.1");
  EXPECT_EQ(attr(by_name_kind.at("mc MS_4/3")->span, "db.system.name"), "memcached");
  const OSpan* producer = by_name_kind.at("mq MS_2/4");
  const OSpan* consumer = by_name_kind.at("mq MS_2/5");
  EXPECT_EQ(producer->service, "MS_1");
  EXPECT_EQ(consumer->span["parentSpanId"], producer->span["spanId"]);
  EXPECT_EQ(attr(producer->span, "messaging.operation.type"), "send");
  EXPECT_EQ(attr(consumer->span, "messaging.operation.type"), "process");
  EXPECT_EQ(attr(consumer->span, "messaging.destination.name"), "MS_2");
  EXPECT_EQ(req["resourceSpans"].size(), 2u);  // MS_1 and MS_2; MS_3, MS_4 are not traced
  check_layout({graphs[0]}, spans);
}

TEST(Export, OperationsBecomeNamesAndAttributes) {
  auto graphs = hand_graphs();
  auto spans = otlp_spans(json::parse(to_otlp_json({graphs[2]})));
  std::map<std::string, const OSpan*> server;  // name -> callee-side span
  for (const OSpan& s : spans)
    if (attr(s.span, "tracelm.rpc_id") != "<absent>") server[s.span["name"]] = &s;
  ASSERT_EQ(server.size(), 4u);
  const OSpan* root = server.at("GET /home");
  EXPECT_EQ(root->service, "gateway");
  EXPECT_EQ(attr(root->span, "http.request.method"), "GET");
  EXPECT_EQ(attr(root->span, "http.route"), "/home");
  const OSpan* cart = server.at("hipstershop.CartService/GetCart");
  EXPECT_EQ(cart->service, "cart");
  EXPECT_EQ(attr(cart->span, "rpc.system.name"), "grpc");
  EXPECT_EQ(attr(cart->span, "rpc.method"), "hipstershop.CartService/GetCart");
  const OSpan* redis = server.at("HGET");
  EXPECT_EQ(redis->span["kind"], 3);
  EXPECT_EQ(redis->service, "cart");
  EXPECT_EQ(attr(redis->span, "db.system.name"), "redis");
  const OSpan* orders = server.at("POST /api/v1/orders");
  EXPECT_EQ(attr(orders->span, "http.request.method"), "POST");
  EXPECT_EQ(attr(orders->span, "http.route"), "/api/v1/orders");
  check_layout({graphs[2]}, spans);
}

TEST(Export, DbCallWithChildrenIsAPair) {
  auto graphs = hand_graphs();
  auto spans = otlp_spans(json::parse(to_otlp_json({graphs[1]})));
  // root, self-call pair, db pair (MS_6 calls on), http pair
  ASSERT_EQ(spans.size(), 7u);
  size_t db_servers = 0;
  for (const OSpan& s : spans)
    if (s.service == "MS_6" && s.span["kind"] == 2) {
      ++db_servers;
      EXPECT_EQ(attr(s.span, "tracelm.rpc_id"), "0.1.1");
    }
  EXPECT_EQ(db_servers, 1u);
  check_layout({graphs[1]}, spans);
}

// parse(export(gs)) has the content and trace ids of gs, for every format.
void expect_round_trip(const std::vector<CallGraph>& graphs, const TraceTiming& t = {},
                       NodeMode node = NodeMode::kService) {
  std::vector<CallGraph> otlp, lines, jaeger;
  std::string err;
  ASSERT_TRUE(parse_otlp_json(to_otlp_json(graphs, t), &otlp, &err, node)) << err;
  ASSERT_TRUE(parse_otlp_json(to_otlp_json_lines(graphs, t), &lines, &err, node)) << err;
  ASSERT_TRUE(parse_jaeger_json(to_jaeger_json(graphs, t), &jaeger, &err, node)) << err;
  for (const auto* back : {&otlp, &lines, &jaeger}) {
    ASSERT_EQ(back->size(), graphs.size());
    size_t differ = 0;
    for (size_t i = 0; i < graphs.size(); ++i) {
      // A graph without a trace id (generated) comes back with the export's.
      bool same = (*back)[i].same_content(graphs[i]) &&
                  (graphs[i].trace_id.empty() || (*back)[i].trace_id == graphs[i].trace_id);
      if (!same && ++differ == 1)
        ADD_FAILURE() << graph_to_json((*back)[i]) << "\n  vs\n" << graph_to_json(graphs[i]);
    }
    EXPECT_EQ(differ, 0u);
  }
  // OTLP keeps the start to the nanosecond.
  for (size_t i = 0; i < graphs.size(); ++i)
    EXPECT_EQ(otlp[i].start_unix_ns, trace_start_ns(graphs[i], i, t));
}

TEST(Export, RoundTripThroughTheImporter) {
  auto graphs = hand_graphs();
  std::vector<CallGraph> op = {graphs[2]};
  graphs.pop_back();
  expect_round_trip(graphs);
  expect_round_trip(op, {}, NodeMode::kOperation);  // "service#operation" nodes
  // With the corpus's own start times (not on a millisecond).
  graphs[0].start_unix_ns = 1'675'000'000'123'456'789;
  op[0].start_unix_ns = 1'675'000'000'000'000'000;
  expect_round_trip(graphs, TraceTiming{5, 0.5});
  expect_round_trip(op, TraceTiming{5, 0.5}, NodeMode::kOperation);
}

TEST(Export, TracesAreSpreadOverTime) {
  auto graphs = hand_graphs();
  TraceTiming t{1'000'000, 4};  // 4 per second from epoch ms 1,000,000
  EXPECT_EQ(trace_start_ns(graphs[0], 0, t), 1'000'000'000'000);
  EXPECT_EQ(trace_start_ns(graphs[1], 1, t), 1'000'250'000'000);
  EXPECT_EQ(trace_start_ns(graphs[2], 2, t), 1'000'500'000'000);
  graphs[1].start_unix_ns = 42;
  EXPECT_EQ(trace_start_ns(graphs[1], 1, t), 42);  // the corpus's own start wins
  auto spans = otlp_spans_of_lines(to_otlp_json_lines(hand_graphs(), t));
  std::set<std::string> root_starts;
  for (const OSpan& s : spans)
    if (!s.span.contains("parentSpanId")) root_starts.insert(s.span["startTimeUnixNano"]);
  EXPECT_EQ(root_starts,
            (std::set<std::string>{"1000000000000", "1000250000000", "1000500000000"}));
  check_layout(hand_graphs(), spans);
}

TEST(Export, JaegerHasTheSameSpans) {
  auto graphs = hand_graphs();
  json doc = json::parse(to_jaeger_json(graphs));
  auto ospans = otlp_spans(json::parse(to_otlp_json(graphs)));
  std::map<std::string, const OSpan*> otlp;  // trace/span -> span
  for (const OSpan& s : ospans)
    otlp[s.span["traceId"].get<std::string>() + "/" + s.span["spanId"].get<std::string>()] = &s;
  ASSERT_EQ(doc["data"].size(), 3u);
  size_t n = 0;
  for (const json& tr : doc["data"])
    for (const json& sp : tr["spans"]) {
      ++n;
      auto it = otlp.find(tr["traceID"].get<std::string>() + "/" + sp["spanID"].get<std::string>());
      ASSERT_NE(it, otlp.end());
      const json& o = it->second->span;
      EXPECT_EQ(sp["operationName"], o["name"]);
      EXPECT_EQ(tr["processes"][sp["processID"].get<std::string>()]["serviceName"],
                it->second->service);
      int64_t start_ns = std::stoll(o["startTimeUnixNano"].get<std::string>());
      int64_t end_ns = std::stoll(o["endTimeUnixNano"].get<std::string>());
      EXPECT_EQ(sp["startTime"], start_ns / 1000);
      EXPECT_EQ(sp["duration"], (end_ns - start_ns) / 1000);
      const char* kinds[] = {"", "internal", "server", "client", "producer", "consumer"};
      EXPECT_EQ(tag(sp, "span.kind"), kinds[o["kind"].get<int>()]);
      EXPECT_EQ(tag(sp, "tracelm.rpc_id"), attr(o, "tracelm.rpc_id"));
      if (o.contains("parentSpanId")) {
        ASSERT_EQ(sp["references"].size(), 1u);
        EXPECT_EQ(sp["references"][0]["refType"], "CHILD_OF");
        EXPECT_EQ(sp["references"][0]["spanID"], o["parentSpanId"]);
      } else {
        EXPECT_TRUE(sp["references"].empty());
      }
    }
  EXPECT_EQ(n, ospans.size());
}

TEST(Export, StreamingWritersMatch) {
  auto graphs = hand_graphs();
  graphs.insert(graphs.begin() + 1, CallGraph{});  // no edges: not written, index still counts
  std::string out;
  OtlpJsonWriter w;
  for (const auto& g : graphs) w.add(g, out);
  w.finish(out);
  EXPECT_EQ(out, to_otlp_json(graphs));
  std::string j;
  JaegerJsonWriter jw;
  for (const auto& g : graphs) jw.add(g, j);
  jw.finish(j);
  EXPECT_EQ(j, to_jaeger_json(graphs));
  std::vector<CallGraph> back;
  std::string err;
  ASSERT_TRUE(parse_otlp_json(out, &back, &err)) << err;
  EXPECT_EQ(back.size(), 3u);
  // Nothing at all is still a valid document.
  back.clear();
  ASSERT_TRUE(parse_otlp_json(to_otlp_json({}), &back, &err)) << err;
  ASSERT_TRUE(parse_jaeger_json(to_jaeger_json({}), &back, &err)) << err;
  EXPECT_TRUE(back.empty());
}

TEST(Export, BadTimingsAndInputsGiveErrors) {
  auto graphs = hand_graphs();
  EXPECT_THROW(to_otlp_json(graphs, TraceTiming{-1, 10}), std::out_of_range);
  EXPECT_THROW(to_jaeger_json(graphs, TraceTiming{kMaxEpochMs + 1, 10}), std::out_of_range);
  EXPECT_THROW(to_otlp_json(graphs, TraceTiming{0, 0}), std::invalid_argument);
  EXPECT_THROW(to_otlp_json(graphs, TraceTiming{0, -3}), std::invalid_argument);
  graphs[1].edges[1].finish_ms = int64_t{1} << 60;
  EXPECT_THROW(to_otlp_json(graphs), std::out_of_range);
  EXPECT_THROW(to_jaeger_json(graphs), std::out_of_range);

  std::vector<CallGraph> gs;
  std::string err;
  EXPECT_FALSE(parse_otlp_json(to_jaeger_json(hand_graphs()), &gs, &err));
  EXPECT_EQ(err, "expected otlp-json, found jaeger-json");
  EXPECT_FALSE(parse_jaeger_json("{\"data\":[1,", &gs, &err));
  EXPECT_NE(err.find("text"), std::string::npos) << err;
  // A trace the importer rejects is named.
  CallGraph bad = hand_graphs()[0];
  bad.edges[1].start_ms = 30;  // the rpc call now ends before it starts
  bad.edges[1].finish_ms = 25;
  EXPECT_FALSE(parse_otlp_json(to_otlp_json({bad}), &gs, &err));
  EXPECT_NE(err.find("end_before_start"), std::string::npos) << err;
}

TEST(Export, RealGraphsRoundTrip) {
  REQUIRE_SHARED(kTrainCsv);
  auto all = real_graphs();
  ASSERT_EQ(all.size(), 1014u);
  // The importer clamps or rejects calls that start before their caller
  // (clock skew, a warning for validate()): those graphs cannot come back
  // unchanged, so the round trip is on the strictly valid ones.
  std::vector<CallGraph> graphs;
  for (const CallGraph& g : all)
    if (is_valid(validate(g), true)) graphs.push_back(g);
  ASSERT_GT(graphs.size(), 950u);
  expect_round_trip(graphs);
  check_layout(graphs, otlp_spans(json::parse(to_otlp_json(graphs))));
}

TEST(Export, CliWritesOtlpAndJaeger) {
  testing::TempDir tmp;
  auto r = testing::run_tracelm("sample -o " + tmp.file("raw.csv") + " --traces 60");
  ASSERT_EQ(r.status, 0) << r.out;
  r = testing::run_tracelm("ingest " + tmp.file("raw.csv") + " -o " + tmp.file("c.jsonl") + " -q");
  ASSERT_EQ(r.status, 0) << r.out;
  auto corpus = load_corpus(tmp.file("c.jsonl"));
  ASSERT_FALSE(corpus.empty());
  std::vector<CallGraph> strict;
  for (const CallGraph& g : corpus)
    if (is_valid(validate(g), true)) strict.push_back(g);

  r = testing::run_tracelm("export " + tmp.file("c.jsonl") + " --format otlp -o " +
                           tmp.file("x.json"));
  ASSERT_EQ(r.status, 0) << r.out;
  std::string text = testing::read_file(tmp.file("x.json"));
  check_layout(corpus, otlp_spans(json::parse(text)));

  r = testing::run_tracelm("export " + tmp.file("c.jsonl") +
                           " --format otlp-jsonl --start 2023-01-29T08:00:00Z --rate 2 -o " +
                           tmp.file("x.jsonl"));
  ASSERT_EQ(r.status, 0) << r.out;
  text = testing::read_file(tmp.file("x.jsonl"));
  EXPECT_EQ(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')), corpus.size());
  std::vector<CallGraph> back;
  std::string err;
  ASSERT_TRUE(parse_otlp_json(text, &back, &err)) << err;
  ASSERT_EQ(back.size(), corpus.size());
  EXPECT_EQ(back[0].start_unix_ns, 1'674'979'200'000'000'000);  // 2023-01-29T08:00:00Z
  EXPECT_EQ(back[1].start_unix_ns, 1'674'979'200'500'000'000);  // + 1/2 s

  r = testing::run_tracelm("export " + tmp.file("c.jsonl") + " --format jaeger -o " +
                           tmp.file("j.json"));
  ASSERT_EQ(r.status, 0) << r.out;
  text = testing::read_file(tmp.file("j.json"));
  EXPECT_EQ(json::parse(text)["data"].size(), corpus.size());
  back.clear();
  ASSERT_TRUE(parse_jaeger_json(text, &back, &err)) << err;
  ASSERT_EQ(back.size(), corpus.size());
  for (size_t i = 0; i < corpus.size(); ++i)
    if (is_valid(validate(corpus[i]), true)) EXPECT_TRUE(back[i].same_content(corpus[i])) << i;

  r = testing::run_tracelm("export " + tmp.file("c.jsonl") + " --format otlp --rate 0 -o " +
                           tmp.file("bad.json"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("traces per second > 0"), std::string::npos) << r.out;
  r = testing::run_tracelm("export " + tmp.file("c.jsonl") +
                           " --format otlp --start yesterday -o " + tmp.file("bad.json"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("RFC 3339"), std::string::npos) << r.out;
}

TEST(Export, CliOtlpOnRealData) {
  REQUIRE_SHARED(kTrainCsv);
  testing::TempDir tmp;
  auto r = testing::run_tracelm("export '" + testing::shared_path(kTrainCsv) +
                                "' --format otlp -o " + tmp.file("x.json"));
  ASSERT_EQ(r.status, 0) << r.out;
  json req = json::parse(testing::read_file(tmp.file("x.json")));
  auto spans = otlp_spans(req);
  EXPECT_GT(spans.size(), 4456u);  // 4456 calls; CLIENT halves come on top
  std::set<std::string> traces;
  for (const OSpan& s : spans) traces.insert(s.span["traceId"]);
  EXPECT_GT(traces.size(), 900u);
}

}  // namespace
}  // namespace tracelm
