#include "sample/synthetic_raw.h"

#include "util/rng.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

namespace tracelm {

namespace {

struct Node {
  std::string ms;
  const char* type;
  std::vector<Node> children;
};

const char* kChildTypes[] = {"rpc", "rpc", "mc", "mc", "db", "mq"};

Node make_template(Rng& r, int depth, int max_depth, const char* type) {
  Node n{fmt::format("MS_{:05d}", r.range(1, 99999)), type, {}};
  if (depth < max_depth && std::string(type) != "mc" && std::string(type) != "db") {
    int k = static_cast<int>(depth == 1 ? r.range(1, 3) : r.range(0, 3));
    for (int i = 0; i < k; ++i)
      n.children.push_back(
          make_template(r, depth + 1, max_depth, kChildTypes[static_cast<int>(r.range(0, 5))]));
  }
  return n;
}

struct Row {
  int64_t ts;
  std::string trace, service, rpc, type, um, dm;
  int64_t rt;
};

// Emits the rows of one call (and its sampled descendants); returns its finish.
int64_t emit(Rng& r, const Node& n, const std::string& caller, const std::string& rpc,
             int64_t start, const std::string& trace, const std::string& service, int64_t base,
             std::vector<Row>& rows) {
  int64_t t = start + r.range(0, 1);
  int k = 0;
  int64_t last = t;
  for (const Node& c : n.children) {
    if (r.chance(0.2)) continue;  // this trace skips the call
    ++k;
    last = emit(r, c, n.ms, rpc + "." + std::to_string(k), last, trace, service, base, rows);
  }
  std::string type = n.type;
  int64_t own = type == "mc" ? r.range(0, 1) : type == "db" ? r.range(0, 3) : r.range(0, 6);
  int64_t finish = std::max(last, t) + own;
  rows.push_back({base + start, trace, service, rpc, type, caller, n.ms, finish - start});
  return finish;
}

}  // namespace

std::string synthetic_raw_csv(const SyntheticRawOptions& opt) {
  Rng r(opt.seed);
  std::vector<std::pair<std::string, Node>> services;
  for (int s = 0; s < opt.services; ++s)
    services.emplace_back(fmt::format("S_{:09d}", r.range(1, 199999999)),
                          make_template(r, 1, static_cast<int>(r.range(2, 4)), "http"));
  std::vector<Row> rows;
  for (int i = 0; i < opt.traces; ++i) {
    // Popular services first: service s is drawn with weight 1/(s+1).
    double total = 0, x;
    for (int s = 0; s < opt.services; ++s) total += 1.0 / (s + 1);
    x = r.uniform() * total;
    int s = 0;
    for (; s + 1 < opt.services && (x -= 1.0 / (s + 1)) > 0; ++s) {
    }
    std::string trace = fmt::format("T_{:011d}", 10000000000ull + r.next() % 89999999999ull);
    int64_t base = r.range(0, 1800000);
    size_t first = rows.size();
    emit(r, services[s].second, "USER", "0", 0, trace, services[s].first, base, rows);
    if (r.chance(opt.p_lost_root))
      rows.erase(std::remove_if(rows.begin() + static_cast<long>(first), rows.end(),
                                [](const Row& w) { return w.rpc == "0"; }),
                 rows.end());
  }
  // Raw-data defects.
  std::vector<Row> out;
  out.reserve(rows.size() * 2);
  for (Row& w : rows) {
    if (r.chance(opt.p_unknown_caller) && w.rpc != "0") w.um = "UNKNOWN";
    if (r.chance(opt.p_unknown_type)) w.type = "UNKNOWN";
    out.push_back(w);
    if ((w.type == "rpc" || w.type == "http") && r.chance(opt.p_duplicate_row)) out.push_back(w);
  }
  for (size_t i = out.size(); i > 1; --i) std::swap(out[i - 1], out[r.next() % i]);
  std::string csv =
      "timestamp,traceid,service,rpc_id,rpctype,um,uminstanceid,interface,dm,"
      "dminstanceid,rt\n";
  for (const Row& w : out) {
    std::string umi = w.um == "USER" ? "USER" : w.um == "UNKNOWN" ? "UNAVAILABLE" : w.um + "_POD_0";
    fmt::format_to(std::back_inserter(csv), "{},{},{},{},{},{},{},synthetic,{},{}_POD_0,{}.0\n",
                   w.ts, w.trace, w.service, w.rpc, w.type, w.um, umi, w.dm, w.dm, w.rt);
  }
  return csv;
}

}  // namespace tracelm
