#include "ingest/alibaba_schema.h"

#include <cctype>
#include <charconv>
#include <cmath>

#include "core/validate.h"

namespace tracelm {

namespace {

constexpr std::string_view kRejectCodes[] = {
    "none",           "line_too_long",   "malformed", "field_too_long",
    "bad_encoding",   "missing_traceid", "bad_type",  "missing_caller",
    "missing_callee", "missing_rt",      "bad_rt",    "bad_timestamp",
    "bad_rpc_id",
};
static_assert(std::size(kRejectCodes) == kNumRowRejects);

std::string lower_trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (out.size() >= 3 && out.compare(0, 3, "\xEF\xBB\xBF") == 0) out.erase(0, 3);  // BOM
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool parse_double(std::string_view s, double* out) {
  if (s.empty()) return false;
  if (s.front() == '+') s.remove_prefix(1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && std::isfinite(*out);
}

// Timestamps beyond +-1e15 ms (31,000 years) are rejected, so that time
// arithmetic (differences, sums with rt <= 1e12) never overflows.
constexpr int64_t kMaxAbsMs = 1000000000000000;

bool parse_ms(std::string_view s, int64_t* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  if (ec == std::errc() && p == s.data() + s.size() && !s.empty())
    return *out >= -kMaxAbsMs && *out <= kMaxAbsMs;
  double d;
  if (!parse_double(s, &d) || std::fabs(d) > static_cast<double>(kMaxAbsMs)) return false;
  *out = std::llround(d);
  return true;
}

}  // namespace

std::string_view row_reject_code(RowReject r) { return kRejectCodes[static_cast<int>(r)]; }

std::optional<ColumnMap> map_header(const std::vector<std::string_view>& fields,
                                    std::string* error) {
  ColumnMap m;
  m.num_columns = fields.size();
  for (size_t i = 0; i < fields.size(); ++i) {
    std::string n = lower_trim(fields[i]);
    int idx = static_cast<int>(i);
    if (n == "timestamp")
      m.timestamp = idx;
    else if (n == "traceid" || n == "trace_id")
      m.traceid = idx;
    else if (n == "service")
      m.service = idx;
    else if (n == "rpc_id" || n == "rpcid")
      m.rpc_id = idx;
    else if (n == "um")
      m.um = idx;
    else if (n == "dm")
      m.dm = idx;
    else if (n == "rpctype" || n == "rpc_type")
      m.rpctype = idx;
    else if (n == "rt")
      m.rt = idx;
  }
  std::string missing;
  auto need = [&](int v, const char* name) {
    if (v < 0) missing += missing.empty() ? name : std::string(", ") + name;
  };
  need(m.timestamp, "timestamp");
  need(m.traceid, "traceid");
  need(m.rpc_id, "rpc_id");
  need(m.um, "um");
  need(m.rpctype, "rpctype");
  need(m.dm, "dm");
  need(m.rt, "rt");
  if (missing.empty()) return m;
  if (error) {
    std::string found;
    for (size_t i = 0; i < fields.size() && i < 16; ++i) {
      std::string_view f = fields[i].substr(0, 40);
      found += (i ? ", " : "") + std::string(f);
    }
    *error =
        "expected a CallGraph header naming timestamp, traceid, rpc_id, um, rpctype, dm, "
        "rt (any order); missing: " +
        missing + "; found: " + found;
  }
  return std::nullopt;
}

RowReject parse_row(const std::vector<std::string_view>& f, const ColumnMap& c, bool keep_missing,
                    RawRow* row) {
  if (f.size() != c.num_columns) return RowReject::kMalformed;
  row->traceid = trim(f[c.traceid]);
  row->service = c.has_service() ? trim(f[c.service]) : std::string_view();
  row->rpc_id = trim(f[c.rpc_id]);
  row->um = trim(f[c.um]);
  row->dm = trim(f[c.dm]);
  for (std::string_view s : {row->traceid, row->service, row->rpc_id, row->um, row->dm})
    if (s.size() > 255) return RowReject::kFieldTooLong;
  for (std::string_view s : {row->traceid, row->service, row->um, row->dm})
    if (!is_valid_utf8(s)) return RowReject::kBadEncoding;
  if (row->traceid.empty() || is_missing_marker(row->traceid)) return RowReject::kMissingTraceId;
  auto type = parse_call_type(trim(f[c.rpctype]));
  if (!type && !keep_missing) return RowReject::kBadType;
  row->type = type.value_or(CallType::kUnknown);
  if (!keep_missing && is_missing_marker(row->um)) return RowReject::kMissingCaller;
  if (!keep_missing && is_missing_marker(row->dm)) return RowReject::kMissingCallee;
  std::string_view rt = trim(f[c.rt]);
  if (is_missing_marker(rt)) return RowReject::kMissingRt;
  double rtv;
  if (!parse_double(rt, &rtv) || std::fabs(rtv) > 1e12) return RowReject::kBadRt;
  row->rt_ms = std::llround(std::fabs(rtv));
  if (!parse_ms(trim(f[c.timestamp]), &row->timestamp_ms)) return RowReject::kBadTimestamp;
  if (!RpcId::valid(row->rpc_id)) return RowReject::kBadRpcId;
  return RowReject::kNone;
}

}  // namespace tracelm
