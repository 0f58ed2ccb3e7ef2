#include "corpus/corpus.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "io/byte_source.h"
#include "io/input_error.h"
#include "io/line_reader.h"
#include "util/json_text.h"

namespace tracelm {

namespace {

constexpr size_t kMaxCorpusLine = size_t{64} << 20;
constexpr int kMaxNesting = 8;

}  // namespace

std::string graph_to_json(const CallGraph& g) {
  std::string s;
  s.reserve(96 + g.edges.size() * 96);
  s += '{';
  if (!g.trace_id.empty()) {
    s += "\"trace_id\":";
    append_json_string(s, g.trace_id);
    s += ',';
  }
  s += "\"service\":";
  append_json_string(s, g.service);
  s += fmt::format(",\"num_edges\":{},\"depth\":{},\"latency\":{},\"edges\":[", g.num_edges(),
                   g.depth(), g.latency());
  for (size_t i = 0; i < g.edges.size(); ++i) {
    const Edge& e = g.edges[i];
    if (i) s += ',';
    s += "{\"rpc_id\":\"";
    s += e.id.str();
    s += "\",\"caller\":";
    append_json_string(s, e.caller);
    s += ",\"callee\":";
    append_json_string(s, e.callee);
    s += fmt::format(",\"type\":\"{}\",\"start\":{},\"finish\":{}}}", call_type_name(e.type),
                     e.start_ms, e.finish_ms);
  }
  s += "]}";
  return s;
}

std::optional<CallGraph> parse_graph_json(std::string_view line, std::string* error) {
  auto fail = [&](std::string msg) -> std::optional<CallGraph> {
    if (error) *error = std::move(msg);
    return std::nullopt;
  };
  if (line.size() > kMaxCorpusLine) return fail("line longer than 64 MiB");
  if (json_nesting_depth(line, kMaxNesting) > kMaxNesting)
    return fail("JSON nested too deeply for a call graph");
  nlohmann::json j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded()) return fail("not valid JSON");
  if (!j.is_object()) return fail("expected a JSON object {\"service\":..., \"edges\":[...]}");
  CallGraph g;
  auto str_field = [&](const nlohmann::json& o, const char* k, std::string* out,
                       bool required) -> bool {
    auto it = o.find(k);
    if (it == o.end()) return !required;
    if (!it->is_string()) return false;
    *out = it->get<std::string>();
    return true;
  };
  auto int_field = [&](const nlohmann::json& o, const char* k, int64_t* out) -> bool {
    auto it = o.find(k);
    if (it == o.end() || !it->is_number_integer()) return false;
    *out = it->get<int64_t>();
    return true;
  };
  if (!str_field(j, "service", &g.service, true)) return fail("\"service\" must be a string");
  if (!str_field(j, "trace_id", &g.trace_id, false)) return fail("\"trace_id\" must be a string");
  auto edges = j.find("edges");
  if (edges == j.end() || !edges->is_array()) return fail("\"edges\" must be an array");
  g.edges.reserve(edges->size());
  for (size_t i = 0; i < edges->size(); ++i) {
    const nlohmann::json& ej = (*edges)[i];
    std::string where = fmt::format("edges[{}]", i);
    if (!ej.is_object()) return fail(where + ": expected an object");
    Edge e;
    std::string id, type;
    if (!str_field(ej, "rpc_id", &id, true)) return fail(where + ": \"rpc_id\" must be a string");
    auto rid = RpcId::parse(id);
    if (!rid) return fail(where + ": rpc_id \"" + id.substr(0, 40) + "\" is not dot-decimal");
    e.id = *rid;
    if (!str_field(ej, "caller", &e.caller, true))
      return fail(where + ": \"caller\" must be a string");
    if (!str_field(ej, "callee", &e.callee, true))
      return fail(where + ": \"callee\" must be a string");
    if (!str_field(ej, "type", &type, true)) return fail(where + ": \"type\" must be a string");
    e.type = parse_call_type(type).value_or(CallType::kUnknown);
    if (!int_field(ej, "start", &e.start_ms)) return fail(where + ": \"start\" must be an integer");
    if (!int_field(ej, "finish", &e.finish_ms))
      return fail(where + ": \"finish\" must be an integer");
    // Bounded so that time arithmetic (durations, differences) cannot overflow.
    constexpr int64_t kMaxAbsMs = 1000000000000000;
    if (e.start_ms < -kMaxAbsMs || e.start_ms > kMaxAbsMs || e.finish_ms < -kMaxAbsMs ||
        e.finish_ms > kMaxAbsMs)
      return fail(where + ": start/finish out of range (|t| <= 1e15 ms)");
    g.edges.push_back(std::move(e));
  }
  g.canonicalize();
  int64_t v;
  if (j.contains("num_edges")) {
    if (!int_field(j, "num_edges", &v) || v != static_cast<int64_t>(g.num_edges()))
      return fail(fmt::format("\"num_edges\" disagrees with the {} edges", g.num_edges()));
  }
  if (j.contains("depth")) {
    if (!int_field(j, "depth", &v) || v != g.depth())
      return fail(fmt::format("\"depth\" disagrees with the edges (depth {})", g.depth()));
  }
  if (j.contains("latency")) {
    if (!int_field(j, "latency", &v) || v != g.latency())
      return fail(fmt::format("\"latency\" disagrees with the edges (latency {})", g.latency()));
  }
  return g;
}

void CorpusWriter::write(const CallGraph& g) {
  line_ = graph_to_json(g);
  line_ += '\n';
  file_.write(line_);
  ++n_;
}

uint64_t read_corpus(const std::string& path, const std::function<void(CallGraph&&)>& fn) {
  uint64_t n = 0;
  for_each_stream(path, [&](ByteSource& src) {
    LineReader lines(src, kMaxCorpusLine);
    std::string_view line;
    bool overlong = false;
    std::string err;
    while (lines.next(&line, &overlong)) {
      if (overlong) throw InputError(src.name(), lines.line_no(), "line longer than 64 MiB");
      size_t k = line.find_first_not_of(" \t");
      if (k == std::string_view::npos) continue;
      auto g = parse_graph_json(line, &err);
      if (!g) throw InputError(src.name(), lines.line_no(), err);
      fn(std::move(*g));
      ++n;
    }
  });
  return n;
}

std::vector<CallGraph> load_corpus(const std::string& path) {
  std::vector<CallGraph> out;
  read_corpus(path, [&](CallGraph&& g) { out.push_back(std::move(g)); });
  return out;
}

}  // namespace tracelm
