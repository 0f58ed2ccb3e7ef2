#include "eval/call_rows.h"

#include <charconv>
#include <cmath>
#include <fstream>

#include <fmt/format.h>

#include "corpus/graph_source.h"
#include "io/atomic_file.h"
#include "io/csv.h"
#include "io/input_error.h"

namespace tracelm {

std::vector<CallRow> call_rows(const CallGraph& g) {
  std::vector<CallRow> out;
  out.reserve(g.edges.size());
  for (const Edge& e : g.edges)
    out.push_back(CallRow{e.caller, e.callee, e.type, e.id.depth(), e.start_ms, e.duration_ms()});
  return out;
}

uint64_t count_calls(const std::string& corpus) {
  uint64_t n = 0;
  for_each_graph(corpus, CsvMode::kClean, [&](CallGraph&& g) { n += g.edges.size(); });
  return n;
}

namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

int64_t parse_int(std::string_view f, const std::string& path, uint64_t line, const char* what) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(f.data(), f.data() + f.size(), v);
  if (ec != std::errc() || p != f.data() + f.size())
    throw InputError(path, line, fmt::format("{}: expected an integer, got '{}'", what, f));
  return v;
}

}  // namespace

void write_calls_csv(const std::string& path, const std::vector<CallRow>& rows) {
  AtomicFile f(path);
  std::string buf = std::string(kCallsCsvHeader) + "\n";
  for (const CallRow& r : rows) {
    buf += fmt::format("{},{},{},{},{},{}\n", csv_field(r.caller), csv_field(r.callee),
                       call_type_name(r.type), r.depth, r.start_ms, r.response_ms);
    if (buf.size() > (1 << 20)) {
      f.write(buf);
      buf.clear();
    }
  }
  f.write(buf);
  f.close();
}

std::vector<CallRow> read_calls_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, 0, "cannot open the calls CSV");
  std::vector<CallRow> rows;
  std::string line, scratch;
  std::vector<std::string_view> f;
  uint64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (n == 1) {
      if (line != kCallsCsvHeader)
        throw InputError(path, n, fmt::format("expected the header '{}'", kCallsCsvHeader));
      continue;
    }
    if (line.empty()) continue;
    if (!split_csv_line(line, f, scratch)) throw InputError(path, n, "malformed CSV quoting");
    if (f.size() != 6)
      throw InputError(path, n,
                       fmt::format("expected 6 fields ({}), got {}", kCallsCsvHeader, f.size()));
    CallRow r;
    r.caller = std::string(f[0]);
    r.callee = std::string(f[1]);
    std::optional<CallType> t = parse_call_type(f[2]);
    if (!t)
      throw InputError(path, n,
                       fmt::format("type: expected http, rpc, mc, db or mq, got '{}'", f[2]));
    r.type = *t;
    int64_t depth = parse_int(f[3], path, n, "depth");
    if (depth < 1 || depth > 1000)
      throw InputError(path, n, fmt::format("depth: expected 1..1000, got {}", depth));
    r.depth = static_cast<int>(depth);
    r.start_ms = parse_int(f[4], path, n, "start_ms");
    r.response_ms = parse_int(f[5], path, n, "response_ms");
    if (r.response_ms < 0)
      throw InputError(path, n, fmt::format("response_ms: expected >= 0, got {}", r.response_ms));
    rows.push_back(std::move(r));
  }
  if (n == 0)
    throw InputError(path, 0, fmt::format("empty file: expected the header '{}'", kCallsCsvHeader));
  return rows;
}

void add_calls(GraphSetProfile& p, const std::vector<CallRow>& rows) {
  for (const CallRow& r : rows) {
    ++p.edges;
    ++p.calls[Call{r.caller, r.callee, r.type}];
    ++p.callee_calls[r.callee];
    p.response_time.push_back(static_cast<double>(r.response_ms));
  }
}

RealismReport calls_report(std::string name, const GraphSetProfile& real,
                           const std::vector<CallRow>& synthetic, const RealismOptions& opt) {
  RealismReport r;
  r.name = std::move(name);
  r.options = opt;
  r.calls_only = true;
  GraphSetProfile syn;
  add_calls(syn, synthetic);
  r.popular = popular_calls(real, syn, opt.popular_calls, opt.kl_epsilon);
  r.flows = caller_flows(real, syn);
  r.heavy_hitters = tracelm::heavy_hitters(real, syn, opt.heavy_hitter_ks);
  if (opt.runs > 1 && synthetic.size() >= opt.runs) {
    // As for graphs: consecutive parts [i n / runs, (i + 1) n / runs) of the rows.
    std::vector<std::vector<double>> acc(r.heavy_hitters.size());
    for (size_t i = 0; i < opt.runs; ++i) {
      GraphSetProfile part;
      std::vector<CallRow> rows(
          synthetic.begin() + static_cast<std::ptrdiff_t>(i * synthetic.size() / opt.runs),
          synthetic.begin() + static_cast<std::ptrdiff_t>((i + 1) * synthetic.size() / opt.runs));
      add_calls(part, rows);
      std::vector<HeavyHitterPoint> h = tracelm::heavy_hitters(real, part, opt.heavy_hitter_ks);
      for (size_t k = 0; k < h.size(); ++k) acc[k].push_back(h[k].accuracy);
    }
    set_heavy_hitter_runs(r.heavy_hitters, acc);
  }
  // The same EMD names as RealismReport::compute() (the summary table takes
  // its rows from the first report); only the response time is defined on calls.
  const std::vector<double> none;
  r.emd.emplace_back("in_degree", normalized_emd(real.in_degree, none));
  r.emd.emplace_back("out_degree", normalized_emd(real.out_degree, none));
  r.emd.emplace_back("response_time", normalized_emd(real.response_time, syn.response_time));
  r.emd.emplace_back("edges_per_graph", normalized_emd(real.edges_per_graph, none));
  r.emd.emplace_back("depth", normalized_emd(real.depth, none));
  r.emd.emplace_back("fanout", normalized_emd(real.fanout, none));
  r.real_structure = StructureSummary::of(real);
  r.synthetic_structure.edges = syn.edges;
  r.evaluated = 0;
  return r;
}

}  // namespace tracelm
