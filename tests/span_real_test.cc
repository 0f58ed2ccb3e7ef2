// Span import on the real files in ../shared/data (skipped when absent), the
// round trip import(export(graphs)) through tracelm's OTLP and Jaeger writers,
// and the span commands of the CLI on the fixtures in tests/data/spans.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/validate.h"
#include "export/jaeger.h"
#include "export/otlp.h"
#include "ingest/spans/span_ingest.h"
#include "test_util.h"

namespace tracelm {
namespace {

using testing::shared_path;
using testing::TempDir;

struct Ingested {
  SpanIngestStats st;
  std::vector<CallGraph> graphs;
};

Ingested ingest_files(const std::vector<std::string>& files, SpanIngestOptions opt = {}) {
  Ingested r;
  SpanIngestCallbacks cb;
  cb.on_graph = [&](CallGraph&& g) { r.graphs.push_back(std::move(g)); };
  r.st = ingest_spans(files, opt, cb);
  return r;
}

uint64_t rejected(const SpanIngestStats& st, SpanReject why) {
  return st.traces_rejected[static_cast<int>(why)];
}

void expect_all_valid(const std::vector<CallGraph>& gs) {
  size_t invalid = 0;
  for (const CallGraph& g : gs) invalid += !is_valid(validate(g), true);
  EXPECT_EQ(invalid, 0u);
}

TEST(SpanReal, OpenTelemetrySdkFile) {
  REQUIRE_SHARED("data/opentelemetry-sdk/sdk.otlp.json");
  Ingested r = ingest_files({shared_path("data/opentelemetry-sdk/sdk.otlp.json")});
  ASSERT_EQ(r.graphs.size(), 1u);
  const CallGraph& g = r.graphs[0];
  ASSERT_EQ(g.edges.size(), 4u);
  EXPECT_EQ(g.edges[0].callee, "frontend");
  EXPECT_EQ(g.edges[1].callee, "checkout");
  EXPECT_EQ(g.edges[1].type, CallType::kHttp);
  EXPECT_EQ(g.edges[2].callee, "payment");
  EXPECT_EQ(g.edges[2].type, CallType::kRpc);
  EXPECT_EQ(g.edges[3].callee, "postgresql");
  EXPECT_EQ(g.edges[3].type, CallType::kDb);
  EXPECT_EQ(g.edges[3].id.str(), "0.1.1.1");
  EXPECT_EQ(r.st.collapsed_spans, 3u);
  expect_all_valid(r.graphs);
}

TEST(SpanReal, DeathStarBenchJaegerExports) {
  REQUIRE_SHARED("data/deathstarbench-jaeger/hotel_reservation-load25.jaeger.json.gz");
  // Two of the twelve files (all twelve: docs/span-import.md; ~10 s).
  Ingested r = ingest_files(
      {shared_path("data/deathstarbench-jaeger/hotel_reservation-load25.jaeger.json.gz"),
       shared_path("data/deathstarbench-jaeger/media_microservices-load25.jaeger.json.gz")});
  EXPECT_EQ(r.st.spans_read, 38000u);
  EXPECT_EQ(r.st.traces, 2000u);
  EXPECT_EQ(r.st.graphs_kept, 2000u);
  EXPECT_EQ(r.st.calls, 31000u);
  EXPECT_EQ(r.st.type_fallbacks, 13000u);  // media's Thrift spans carry no tags
  expect_all_valid(r.graphs);
  std::map<std::string, uint64_t> callees;
  for (const CallGraph& g : r.graphs)
    for (const Edge& e : g.edges) ++callees[e.callee];
  EXPECT_EQ(callees["search"], 1000u);
  EXPECT_EQ(callees["geo"], 1000u);
  EXPECT_EQ(callees["compose-review-service"], 5000u);
  EXPECT_GT(callees["mongodb"], 0u);
  EXPECT_GT(callees["redis"], 0u);
}

TEST(SpanReal, TrainTicketAndOnlineBoutiqueTables) {
  REQUIRE_SHARED("data/trainticket/trainticket-2023-01-29.spans.csv.gz");
  Ingested tt = ingest_files({shared_path("data/trainticket/trainticket-2023-01-29.spans.csv.gz")});
  EXPECT_EQ(tt.st.spans_read, 328848u);
  EXPECT_EQ(tt.st.duplicate_spans, 7780u);  // rows repeated across the per-minute files
  EXPECT_EQ(tt.st.traces, 4483u);
  EXPECT_EQ(tt.st.graphs_kept, 4285u);
  EXPECT_EQ(rejected(tt.st, SpanReject::kOutlivesParent), 198u);
  EXPECT_EQ(tt.st.calls, 108925u);
  expect_all_valid(tt.graphs);
  for (const CallGraph& g : tt.graphs) {
    ASSERT_EQ(g.edges[0].callee, "ts-gateway-service");
    ASSERT_NE(g.start_unix_ns, 0);
  }
  REQUIRE_SHARED("data/onlineboutique/onlineboutique-2022-08-22.spans.csv.gz");
  Ingested ob =
      ingest_files({shared_path("data/onlineboutique/onlineboutique-2022-08-22.spans.csv.gz")});
  EXPECT_EQ(ob.st.traces, 9831u);
  EXPECT_EQ(ob.st.graphs_kept, 9831u);
  EXPECT_EQ(ob.st.calls, 207049u);
  expect_all_valid(ob.graphs);
}

// import(export(graphs)) == graphs for tracelm's OTLP, OTLP lines and Jaeger writers.
void expect_round_trip(const std::vector<CallGraph>& graphs) {
  TempDir d;
  std::string otlp_lines = to_otlp_json_lines(graphs);
  testing::write_file(d.file("a.otlp.json"), to_otlp_json(graphs));
  testing::write_file(d.file("b.otlp.jsonl"), otlp_lines);
  testing::write_file(d.file("c.jaeger.json"), to_jaeger_json(graphs));
  std::map<std::string, const CallGraph*> by_id;
  for (const CallGraph& g : graphs) by_id[g.trace_id] = &g;
  for (const char* f : {"a.otlp.json", "b.otlp.jsonl", "c.jaeger.json"}) {
    SCOPED_TRACE(f);
    Ingested r = ingest_files({d.file(f)});
    ASSERT_EQ(r.graphs.size(), graphs.size()) << r.st.to_text();
    size_t differ = 0;
    for (const CallGraph& g : r.graphs) {
      auto it = by_id.find(g.trace_id);
      ASSERT_NE(it, by_id.end()) << g.trace_id;
      if (!g.same_content(*it->second)) {
        if (++differ == 1)
          ADD_FAILURE() << graph_to_json(g) << "\n  vs\n" << graph_to_json(*it->second);
      }
    }
    EXPECT_EQ(differ, 0u);
  }
}

TEST(SpanReal, ImportOfExportGivesBackTheGraphs) {
  REQUIRE_SHARED("data/trainticket/trainticket-2023-01-29-faultfree-08_50.spans.csv.gz");
  Ingested tt = ingest_files(
      {shared_path("data/trainticket/trainticket-2023-01-29-faultfree-08_50.spans.csv.gz")});
  ASSERT_GT(tt.graphs.size(), 50u);
  expect_round_trip(tt.graphs);
  REQUIRE_SHARED("data/deathstarbench-jaeger/media_microservices-load25.jaeger.json.gz");
  Ingested m = ingest_files(
      {shared_path("data/deathstarbench-jaeger/media_microservices-load25.jaeger.json.gz")});
  ASSERT_GT(m.graphs.size(), 500u);
  m.graphs.resize(300);
  expect_round_trip(m.graphs);
}

// export(import(real file)) keeps the services, operations, kinds and
// timings: with --node operation, importing the export gives the same graphs
// (start times included), and the export's callee-side spans have the
// services, names and kinds of the original's.
std::vector<CallGraph> reimport(const std::vector<CallGraph>& graphs, const std::string& file,
                                SpanIngestOptions opt) {
  TempDir d;
  if (file.ends_with(".jaeger.json"))
    testing::write_file(d.file(file), to_jaeger_json(graphs));
  else
    testing::write_file(d.file(file), to_otlp_json(graphs));
  return ingest_files({d.file(file)}, opt).graphs;
}

void expect_same_graphs(const std::vector<CallGraph>& a, const std::vector<CallGraph>& b,
                        bool same_start_ns) {
  ASSERT_EQ(a.size(), b.size());
  std::map<std::string, const CallGraph*> by_id;
  for (const CallGraph& g : b) by_id[g.trace_id] = &g;
  size_t differ = 0;
  for (const CallGraph& g : a) {
    auto it = by_id.find(g.trace_id);
    ASSERT_NE(it, by_id.end()) << g.trace_id;
    bool same = g.same_content(*it->second) &&
                (!same_start_ns || g.start_unix_ns == it->second->start_unix_ns) &&
                g.start_unix_ns / 1000 == it->second->start_unix_ns / 1000;
    if (!same && ++differ == 1)
      ADD_FAILURE() << graph_to_json(g) << "\n  vs\n" << graph_to_json(*it->second);
  }
  EXPECT_EQ(differ, 0u);
}

TEST(SpanReal, ExportOfImportKeepsServicesOperationsKindsAndTimings) {
  REQUIRE_SHARED("data/opentelemetry-sdk/sdk.otlp.json");
  SpanIngestOptions op;
  op.graph.node = NodeMode::kOperation;
  Ingested r = ingest_files({shared_path("data/opentelemetry-sdk/sdk.otlp.json")}, op);
  ASSERT_EQ(r.graphs.size(), 1u);
  expect_same_graphs(reimport(r.graphs, "x.otlp.json", op), r.graphs, true);
  expect_same_graphs(reimport(r.graphs, "x.jaeger.json", op), r.graphs, false);
  // (service, name, kind) of the spans of the original and of the export.
  auto triples = [](const nlohmann::json& req) {
    std::set<std::string> out;
    for (const auto& rs : req["resourceSpans"]) {
      std::string svc;
      for (const auto& a : rs["resource"]["attributes"])
        if (a["key"] == "service.name") svc = a["value"]["stringValue"];
      for (const auto& ss : rs["scopeSpans"])
        for (const auto& sp : ss["spans"])
          out.insert(svc + "|" + sp["name"].get<std::string>() + "|" +
                     std::to_string(sp["kind"].get<int>()));
    }
    return out;
  };
  auto original = triples(nlohmann::json::parse(
      testing::read_file(shared_path("data/opentelemetry-sdk/sdk.otlp.json"))));
  auto exported = triples(nlohmann::json::parse(to_otlp_json(r.graphs)));
  for (const char* t : {"frontend|GET /checkout|2", "checkout|POST /checkout|2",
                        "checkout|payment.Payment/Charge|3", "payment|payment.Payment/Charge|2"}) {
    EXPECT_TRUE(original.count(t)) << t;
    EXPECT_TRUE(exported.count(t)) << t;
  }
  // The database call: a CLIENT span of payment; its name comes back with
  // '_' for the space (node names are plain: docs/export.md).
  EXPECT_TRUE(original.count("payment|INSERT payments|3"));
  EXPECT_TRUE(exported.count("payment|INSERT_payments|3"));
  // Timings: the calls' durations in ms, as imported (ends rounded to the ms).
  const CallGraph& g = r.graphs[0];
  std::vector<int64_t> d;
  for (const Edge& e : g.edges) d.push_back(e.duration_ms());
  EXPECT_EQ(d, (std::vector<int64_t>{11, 8, 5, 3}));

  REQUIRE_SHARED("data/trainticket/trainticket-2023-01-29-faultfree-08_50.spans.csv.gz");
  Ingested tt = ingest_files(
      {shared_path("data/trainticket/trainticket-2023-01-29-faultfree-08_50.spans.csv.gz")}, op);
  ASSERT_GT(tt.graphs.size(), 50u);
  expect_same_graphs(reimport(tt.graphs, "t.otlp.json", op), tt.graphs, true);
  expect_same_graphs(reimport(tt.graphs, "t.jaeger.json", op), tt.graphs, false);

  REQUIRE_SHARED("data/deathstarbench-jaeger/media_microservices-load25.jaeger.json.gz");
  Ingested h = ingest_files(
      {shared_path("data/deathstarbench-jaeger/media_microservices-load25.jaeger.json.gz")}, op);
  ASSERT_GT(h.graphs.size(), 500u);
  h.graphs.resize(300);
  expect_same_graphs(reimport(h.graphs, "h.jaeger.json", op), h.graphs, false);
  expect_same_graphs(reimport(h.graphs, "h.otlp.json", op), h.graphs, true);
  std::set<std::string> services;
  for (const CallGraph& hg : h.graphs)
    for (const Edge& e : hg.edges) services.insert(e.callee.substr(0, e.callee.find('#')));
  for (const char* svc : {"nginx", "compose-review-service", "mongodb", "memcached", "redis"})
    EXPECT_TRUE(services.count(svc)) << svc;
}

TEST(SpanReal, ImportOfExportWithoutSharedData) {
  std::string fx = std::string(TRACELM_SOURCE_DIR) + "/tests/data/spans/";
  Ingested r = ingest_files(
      {fx + "table.csv", fx + "otel.otlp.json", fx + "hotel.jaeger.json", fx + "zipkin.json"});
  ASSERT_EQ(r.graphs.size(), 4u);
  expect_round_trip(r.graphs);
}

TEST(SpanCli, IngestLabelsStatsAndKeepLabel) {
  TempDir d;
  std::string fx = std::string(TRACELM_SOURCE_DIR) + "/tests/data/spans/";
  auto r = testing::run_tracelm("ingest " + fx + "table.csv " + fx + "zipkin.json -o " +
                                d.file("c.jsonl") + " --rejects " + d.file("rej.jsonl"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("orphan_span"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("round to 0 ms"), std::string::npos) << r.out;
  EXPECT_EQ(load_corpus(d.file("c.jsonl")).size(), 2u);
  std::string rej = testing::read_file(d.file("rej.jsonl"));
  EXPECT_NE(rej.find("\"reason\":\"orphan_span\""), std::string::npos) << rej;
  EXPECT_NE(rej.find("\"reason\":\"bad_time\""), std::string::npos) << rej;
  // Fault list -> label windows -> labelled corpus -> stats per label.
  testing::write_file(
      d.file("faults.json"),
      R"({"08":[{"inject_time":"2023-01-29 08:42:40","inject_timestamp":"0",)"
      R"("inject_pod":"ts-auth-service-7f8d7d756d-k7b9j","inject_type":"return"}]})");
  r = testing::run_tracelm("labels " + d.file("faults.json") + " --window 60 -o " +
                           d.file("labels.csv"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(testing::read_file(d.file("labels.csv")),
            "start,end,label,service\n2023-01-29T08:42:40Z,2023-01-29T08:43:40Z,return,"
            "ts-auth-service\n");
  r = testing::run_tracelm("ingest " + fx + "table.csv " + fx + "zipkin.json -q -o " +
                           d.file("l.jsonl") + " --labels " + d.file("labels.csv"));
  ASSERT_EQ(r.status, 0) << r.out;
  r = testing::run_tracelm("stats " + d.file("l.jsonl"));
  EXPECT_NE(r.out.find("labels     normal:1 return:1"), std::string::npos) << r.out;
  r = testing::run_tracelm("ingest " + fx + "table.csv " + fx + "zipkin.json -q -o " +
                           d.file("n.jsonl") + " --labels " + d.file("labels.csv") +
                           " --keep-label normal");
  ASSERT_EQ(r.status, 0) << r.out;
  auto normal = load_corpus(d.file("n.jsonl"));
  ASSERT_EQ(normal.size(), 1u);
  EXPECT_EQ(normal[0].label, "normal");
  EXPECT_EQ(normal[0].edges[1].callee, "users");
  // Errors name the file and what was tried.
  testing::write_file(d.file("x.json"), "{\"nothing\":[]}");
  r = testing::run_tracelm("ingest " + d.file("x.json") + " -o " + d.file("x.jsonl"));
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("not a span format: tried OTLP/JSON"), std::string::npos) << r.out;
}

TEST(SpanCli, DemoDefaultsToTheShippedRealSample) {
  TempDir d;
  auto r = testing::run_tracelm("demo --train-minutes 0 --out " + d.file("demo"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("REAL sample"), std::string::npos) << r.out;
  auto train = load_corpus(d.file("demo/corpus.jsonl"));
  EXPECT_GT(train.size(), 1500u);
  EXPECT_EQ(train[0].edges[0].callee, "ts-gateway-service");
  EXPECT_NE(r.out.find("popular calls KL"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tracelm

namespace tracelm {
namespace {

TEST(SpanCli, ExportRefusesInvalidGraphsAsTracesAndCountsThem) {
  TempDir d;
  testing::write_file(
      d.file("c.jsonl"),
      R"({"service":"S","edges":[{"rpc_id":"0","caller":"USER","callee":"a","type":"http","start":0,"finish":5}]})"
      "\n"
      R"({"service":"S","edges":[{"rpc_id":"0","caller":"USER","callee":"a","type":"http","start":0,"finish":5},)"
      R"({"rpc_id":"0.1","caller":"a","callee":"b","type":"rpc","start":4,"finish":2}]})"
      "\n");
  auto r = testing::run_tracelm("export " + d.file("c.jsonl") + " --format jaeger -o " +
                                d.file("t.json"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("refused 1 invalid graphs"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wrote 1 graphs"), std::string::npos) << r.out;
  EXPECT_EQ(testing::read_file(d.file("t.json")).find("\"duration\":-"), std::string::npos);
}

}  // namespace
}  // namespace tracelm
