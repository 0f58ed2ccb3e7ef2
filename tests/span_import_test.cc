// Span readers and span ingestion (src/ingest/spans): the four formats on
// small fixtures (tests/data/spans), errors, labels, and the corpus fields.
#include <gtest/gtest.h>
#include <zlib.h>

#include "core/validate.h"
#include "corpus/corpus.h"
#include "ingest/spans/labels.h"
#include "ingest/spans/span_ingest.h"
#include "io/input_error.h"
#include "test_util.h"

namespace tracelm {
namespace {

using testing::edges_text;

using testing::TempDir;
using testing::write_file;

std::string fixture(const std::string& name) {
  return std::string(TRACELM_SOURCE_DIR) + "/tests/data/spans/" + name;
}

struct Result {
  SpanIngestStats st;
  std::vector<CallGraph> graphs;
  std::vector<std::string> rejected;  // reason codes
};

Result run(const std::vector<std::string>& inputs, SpanIngestOptions opt = {}) {
  Result r;
  SpanIngestCallbacks cb;
  cb.on_graph = [&](CallGraph&& g) { r.graphs.push_back(std::move(g)); };
  cb.on_rejected_trace = [&](const SpanGraph& g) {
    r.rejected.emplace_back(span_reject_code(g.reject));
  };
  r.st = ingest_spans(inputs, opt, cb);
  return r;
}

std::string error_of(const std::vector<std::string>& inputs, SpanIngestOptions opt = {}) {
  try {
    run(inputs, opt);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(SpanImport, DetectsFormatsByContent) {
  EXPECT_EQ(sniff_file_format(fixture("otel.otlp.json")), SpanFormat::kOtlpJson);
  EXPECT_EQ(sniff_file_format(fixture("hotel.jaeger.json")), SpanFormat::kJaegerJson);
  EXPECT_EQ(sniff_file_format(fixture("zipkin.json")), SpanFormat::kZipkinJson);
  EXPECT_EQ(sniff_file_format(fixture("table.csv")), SpanFormat::kSpanTable);
  EXPECT_EQ(detect_span_format("timestamp,traceid,service,rpc_id,um,rpctype,dm,rt\n"),
            SpanFormat::kAlibabaCsv);
  EXPECT_EQ(detect_span_format("hello"), SpanFormat::kUnknown);
}

TEST(SpanImport, OtlpJsonPairsClientAndServerSpans) {
  Result r = run({fixture("otel.otlp.json")});
  ASSERT_EQ(r.graphs.size(), 1u) << r.st.to_text();
  const CallGraph& g = r.graphs[0];
  EXPECT_EQ(edges_text(g),
            "0 USER>frontend http 0-11\n"
            "0.1 frontend>checkout http 2-10\n"
            "0.1.1 checkout>payment rpc 4-9\n"
            "0.1.1.1 payment>postgresql db 5-8\n");
  EXPECT_EQ(g.trace_id, "5b8efff798038103d269b633813fc60c");
  EXPECT_EQ(g.start_unix_ns, 1750000000000250000);
  EXPECT_EQ(g.service, "frontend#GET_|checkout");
  EXPECT_EQ(r.st.spans_read, 7u);
  EXPECT_EQ(r.st.streams_by_format.at("otlp-json"), 1u);
  EXPECT_TRUE(is_valid(validate(g), true));
}

TEST(SpanImport, OtlpJsonLinesJoinATraceSplitOverLinesAndCountBadLines) {
  TempDir d;
  nlohmann::json doc = nlohmann::json::parse(testing::read_file(fixture("otel.otlp.json")));
  std::string lines;
  for (auto& rs : doc["resourceSpans"]) {  // one resource per line, as a collector writes
    nlohmann::json one;
    one["resourceSpans"] = nlohmann::json::array({rs});
    lines += one.dump() + "\n";
  }
  lines += "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"spanId\"\n";  // truncated line
  write_file(d.file("x.jsonl"), lines);
  Result r = run({d.file("x.jsonl")});
  ASSERT_EQ(r.graphs.size(), 1u) << r.st.to_text();
  EXPECT_EQ(r.graphs[0].edges.size(), 4u);
  EXPECT_EQ(r.st.documents, 3u);
  EXPECT_EQ(r.st.bad_json_lines, 1u);
  EXPECT_NE(r.st.first_bad_json_line.find("x.jsonl:4:"), std::string::npos)
      << r.st.first_bad_json_line;
}

TEST(SpanImport, JaegerJsonUsesProcessesAndReferences) {
  Result r = run({fixture("hotel.jaeger.json")});
  ASSERT_EQ(r.graphs.size(), 1u) << r.st.to_text();
  EXPECT_EQ(edges_text(r.graphs[0]),
            "0 USER>frontend http 0-63\n"
            "0.1 frontend>search rpc 0-37\n"
            "0.1.1 search>mongodb db 12-17\n");
  EXPECT_EQ(r.rejected, std::vector<std::string>{"parent_in_other_trace"});
  EXPECT_EQ(r.st.traces, 2u);
  EXPECT_EQ(r.st.traces_rejected[static_cast<int>(SpanReject::kParentInOtherTrace)], 1u);
}

TEST(SpanImport, ZipkinSharedSpanIdsAreSplitIntoClientAndServer) {
  Result r = run({fixture("zipkin.json")});
  ASSERT_EQ(r.graphs.size(), 1u) << r.st.to_text();
  EXPECT_EQ(edges_text(r.graphs[0]),
            "0 USER>web http 0-20\n"
            "0.1 web>users http 2-17\n"
            "0.1.1 users>redis mc 4-6\n");
}

TEST(SpanImport, SpanTableWithPodNamesAndCountedRejections) {
  for (std::string cols : {"", "nezha"}) {
    SpanIngestOptions opt;
    if (!cols.empty()) opt.columns = SpanColumns::parse(cols);
    Result r = run({fixture("table.csv")}, opt);
    ASSERT_EQ(r.graphs.size(), 1u) << r.st.to_text();
    EXPECT_EQ(edges_text(r.graphs[0]),
              "0 USER>ts-gateway-service http 0-318\n"
              "0.1 ts-gateway-service>ts-auth-service http 2-318\n"
              "0.1.1 ts-auth-service>ts-verification-code-service http 7-14\n"
              "0.1.2 ts-auth-service>sql db 14-16\n");
    EXPECT_EQ(r.graphs[0].service, "ts-auth-service#|api|v1|users|login");
    EXPECT_EQ(r.st.rows_rejected[static_cast<int>(SpanRowError::kBadTime)], 1u);
    EXPECT_EQ(r.st.traces, 3u);
    EXPECT_EQ(r.st.traces_rejected[static_cast<int>(SpanReject::kOrphan)], 1u);
    EXPECT_EQ(r.st.traces_rejected[static_cast<int>(SpanReject::kBadSpan)], 1u);
    EXPECT_EQ(r.st.spans_read, 11u);  // 12 rows, one with a bad time
  }
}

TEST(SpanImport, ColumnsMapAnyTableAndDurationStandsInForEnd) {
  TempDir d;
  write_file(d.file("t.csv"),
             "tid,sid,psid,svc,op,start_us,dur_ms\n"
             "a,1,,web,GET /x,1700000000000000,10\n"
             "a,2,1,db-proxy,query,1700000000001000,4\n");
  SpanIngestOptions opt;
  EXPECT_NE(error_of({d.file("t.csv")}).find("(no error)"), 0u);  // not detected as spans
  // Trace, span and parent ids are found by name; the rest is mapped.
  opt.columns = SpanColumns::parse(
      "service=svc,operation=op,start=start_us,duration=dur_ms,start_unit=us,duration_unit=ms");
  write_file(d.file("u.csv"),
             "TraceId,SpanId,ParentSpanId,svc,op,start_us,dur_ms\n"
             "a,1,,web,GET /x,1700000000000000,10\n"
             "a,2,1,db-proxy,query,1700000000001000,4\n");
  Result r = run({d.file("u.csv")}, opt);
  ASSERT_EQ(r.graphs.size(), 1u) << r.st.to_text();
  EXPECT_EQ(edges_text(r.graphs[0]), "0 USER>web http 0-10\n0.1 web>db-proxy rpc 1-5\n");
  EXPECT_EQ(r.st.type_fallbacks, 1u);
  EXPECT_THROW(SpanColumns::parse("trace=a,bogus=b"), std::invalid_argument);
  EXPECT_THROW(SpanColumns::parse("start_unit=weeks"), std::invalid_argument);
  SpanIngestOptions bad;
  bad.columns = SpanColumns::parse("trace=nope");
  std::string e = error_of({d.file("u.csv")}, bad);
  EXPECT_NE(e.find("u.csv:1: span table header: cannot map trace (column 'nope' not in header)"),
            std::string::npos)
      << e;
}

TEST(SpanImport, BadInputsGiveClearErrorsNeverCrashes) {
  TempDir d;
  write_file(d.file("empty.json"), "");
  EXPECT_NE(error_of({d.file("empty.json")}).find("empty file"), std::string::npos);
  write_file(d.file("other.json"), "{\"hello\": 1}\n");
  std::string e = error_of({d.file("other.json")});
  EXPECT_NE(e.find("not a span format"), std::string::npos) << e;
  write_file(d.file("obj.json"), "{\"resourceSpans\": 1}");
  EXPECT_EQ(run({d.file("obj.json")}).st.bad_spans.at("bad_structure"), 1u);
  write_file(d.file("zip.json"), "{\"data\":[{\"traceID\":\"a\",\"spans\":[");
  e = error_of({d.file("zip.json")});
  EXPECT_NE(e.find("zip.json:1:"), std::string::npos) << e;
  EXPECT_NE(e.find("not valid JSON"), std::string::npos) << e;
  write_file(d.file("multi.json"), "{\"data\":\n[\n{\"traceID\": }]}");
  e = error_of({d.file("multi.json")});
  EXPECT_NE(e.find("multi.json:3:13: not valid JSON"), std::string::npos) << e;
  // A number beyond a double's range (found by fuzz_spans): an error, not a crash.
  write_file(d.file("huge.json"),
             "{\"data\":[{\"traceID\":\"a\",\"spans\":[{\"startTime\":16557e0368628313}]}]}");
  e = error_of({d.file("huge.json")});
  EXPECT_NE(e.find("huge.json:1: not valid JSON: number overflow"), std::string::npos) << e;
  write_file(d.file("deep.json"), "{\"data\":" + std::string(100000, '[') + "\n");
  e = error_of({d.file("deep.json")});
  EXPECT_NE(e.find("nested deeper than 64"), std::string::npos) << e;
  std::string big = "{\"data\":[" + std::string(3 << 20, ' ') + "]}";
  write_file(d.file("big.json"), big);
  SpanIngestOptions small;
  small.max_document = 1 << 20;
  e = error_of({d.file("big.json")}, small);
  EXPECT_NE(e.find("longer than 1 MiB"), std::string::npos) << e;
  std::string garbage;
  for (int i = 0; i < 5000; ++i) garbage += static_cast<char>((i * 7919) % 251);
  write_file(d.file("bin.dat"), garbage);
  e = error_of({d.file("bin.dat")});
  EXPECT_NE(e.find("not a span format"), std::string::npos) << e;
  // A truncated gzip stream.
  std::string table = testing::read_file(fixture("table.csv"));
  uLongf n = compressBound(table.size()) + 64;
  std::string gz(n, '\0');
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
  zs.next_in = reinterpret_cast<Bytef*>(table.data());
  zs.avail_in = table.size();
  zs.next_out = reinterpret_cast<Bytef*>(gz.data());
  zs.avail_out = n;
  deflate(&zs, Z_FINISH);
  gz.resize(zs.total_out);
  deflateEnd(&zs);
  write_file(d.file("ok.csv.gz"), gz);
  EXPECT_EQ(run({d.file("ok.csv.gz")}).graphs.size(), 1u);
  write_file(d.file("cut.csv.gz"), gz.substr(0, gz.size() / 2));
  e = error_of({d.file("cut.csv.gz")});
  EXPECT_NE(e.find("cut.csv.gz"), std::string::npos) << e;
}

TEST(SpanImport, SpillsToPartitionsWithASmallMemoryBudget) {
  TempDir d;
  std::string csv =
      "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration\n";
  // 3000 traces of 3 spans, the spans of each trace far apart in the file.
  for (int part = 0; part < 3; ++part)
    for (int t = 0; t < 3000; ++t) {
      int64_t s = 1700000000000000000 + t * int64_t{1000000000};
      std::string id = "t" + std::to_string(t);
      if (part == 0)
        csv += id + ",a,root,web-1-2,GET /x," + std::to_string(s) + "," +
               std::to_string(s + 9000000) + ",9000\n";
      if (part == 1)
        csv += id + ",b,a,web-1-2,HTTP GET," + std::to_string(s + 1000000) + "," +
               std::to_string(s + 5000000) + ",4000\n";
      if (part == 2)
        csv += id + ",c,b,api-3-4,/users," + std::to_string(s + 2000000) + "," +
               std::to_string(s + 4000000) + ",2000\n";
    }
  write_file(d.file("big.csv"), csv);
  SpanIngestOptions opt;
  opt.memory_budget = 64 << 10;
  opt.partitions = 8;
  opt.tmp_dir = d.path();
  Result r = run({d.file("big.csv")}, opt);
  EXPECT_GT(r.st.spilled_bytes, 0u);
  ASSERT_EQ(r.graphs.size(), 3000u);
  for (const CallGraph& g : r.graphs)
    ASSERT_EQ(edges_text(g), "0 USER>web http 0-9\n0.1 web>api http 1-5\n");
}

TEST(SpanImport, LabelsMarkGraphsByStartTimeAndService) {
  int64_t ns = 0;
  ASSERT_TRUE(parse_time_ns("2023-01-29T08:43:04Z", &ns));
  EXPECT_EQ(ns, int64_t{1674981784} * 1000000000);
  ASSERT_TRUE(parse_time_ns("2023-01-29 16:43:04+08:00", &ns));
  EXPECT_EQ(ns, int64_t{1674981784} * 1000000000);
  ASSERT_TRUE(parse_time_ns("1674981784.5", &ns));
  EXPECT_EQ(ns, int64_t{1674981784500000000});
  EXPECT_FALSE(parse_time_ns("yesterday", &ns));
  nlohmann::json faults = nlohmann::json::parse(R"({"08":[
    {"inject_time":"2023-01-29 08:42:40","inject_timestamp":"1","inject_pod":"ts-auth-service-7f8d7d756d-k7b9j","inject_type":"return"},
    {"inject_time":"2023-01-29 08:42:40","inject_timestamp":"1","inject_pod":"ts-order-service-1-2","inject_type":"cpu_contention"}]})");
  std::vector<LabelWindow> w = fault_list_to_windows(faults, 60, "f.json");
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].service, "ts-auth-service");
  TempDir d;
  write_file(d.file("labels.csv"), label_csv(w));
  EXPECT_EQ(read_label_csv(d.file("labels.csv")).size(), 2u);
  SpanIngestOptions opt;
  opt.labels = read_label_csv(d.file("labels.csv"));
  Result r = run({fixture("table.csv")}, opt);  // t1 starts 08:42:48, calls ts-auth-service
  ASSERT_EQ(r.graphs.size(), 1u);
  EXPECT_EQ(r.graphs[0].label, "return");
  EXPECT_EQ(r.st.graphs_by_label.at("return"), 1u);
  opt.keep_labels = {"normal"};
  r = run({fixture("table.csv")}, opt);
  EXPECT_EQ(r.graphs.size(), 0u);
  EXPECT_EQ(r.st.dropped_by_label, 1u);
  write_file(d.file("bad.csv"), "start,end,label\n2023-01-29T08:00:00Z,soon,x\n");
  EXPECT_THROW(read_label_csv(d.file("bad.csv")), InputError);
}

TEST(SpanImport, CorpusKeepsStartTimeAndLabel) {
  Result r = run({fixture("otel.otlp.json")});
  ASSERT_EQ(r.graphs.size(), 1u);
  r.graphs[0].label = "normal";
  std::string line = graph_to_json(r.graphs[0]);
  EXPECT_NE(line.find("\"start_unix_nano\":1750000000000250000,\"label\":\"normal\""),
            std::string::npos)
      << line;
  std::string err;
  auto back = parse_graph_json(line, &err);
  ASSERT_TRUE(back) << err;
  EXPECT_EQ(*back, r.graphs[0]);
  EXPECT_FALSE(parse_graph_json(R"({"label":3,"service":"s","edges":[]})", &err));
}

}  // namespace
}  // namespace tracelm
