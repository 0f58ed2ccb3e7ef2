#include "ingest/spans/labels.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>

#include <fmt/format.h>

#include "ingest/spans/span_graph.h"
#include "io/byte_source.h"
#include "io/csv.h"
#include "io/input_error.h"
#include "io/line_reader.h"
#include "util/utc_time.h"

namespace tracelm {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

}  // namespace

bool parse_time_ns(std::string_view s, int64_t* ns) {
  s = trim(s);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  if (s.empty()) return false;
  // Epoch seconds, possibly with a fraction.
  if (s.find_first_not_of("0123456789.") == std::string_view::npos) {
    double d = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
    if (ec != std::errc() || p != s.data() + s.size() || d > 9.2e9) return false;
    *ns = static_cast<int64_t>(d * 1e9 + 0.5);
    return true;
  }
  int Y, M, D, h, m, sec;
  if (!digits(s, 0, 4, &Y) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, &M) || s[7] != '-' ||
      !digits(s, 8, 2, &D) || (s[10] != 'T' && s[10] != ' ' && s[10] != 't') ||
      !digits(s, 11, 2, &h) || s[13] != ':' || !digits(s, 14, 2, &m) || s[16] != ':' ||
      !digits(s, 17, 2, &sec))
    return false;
  if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return false;
  size_t p = 19;
  int64_t frac = 0;
  if (p < s.size() && s[p] == '.') {
    ++p;
    int64_t scale = 100000000;
    while (p < s.size() && std::isdigit(static_cast<unsigned char>(s[p]))) {
      frac += (s[p] - '0') * scale;
      scale /= 10;
      ++p;
    }
  }
  int64_t offset_s = 0;
  if (p < s.size()) {
    if (s[p] == 'Z' || s[p] == 'z') {
      ++p;
    } else if (s[p] == '+' || s[p] == '-') {
      int oh, om;
      if (!digits(s, p + 1, 2, &oh) || p + 3 >= s.size() || s[p + 3] != ':' ||
          !digits(s, p + 4, 2, &om))
        return false;
      offset_s = (s[p] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
      p += 6;
    }
  }
  if (p != s.size()) return false;
  std::tm tm{};
  tm.tm_year = Y - 1900;
  tm.tm_mon = M - 1;
  tm.tm_mday = D;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = sec;
  int64_t t = static_cast<int64_t>(timegm(&tm)) - offset_s;
  *ns = t * 1000000000 + frac;
  return true;
}

std::vector<LabelWindow> read_label_csv(const std::string& path) {
  std::vector<LabelWindow> out;
  for_each_stream(path, [&](ByteSource& src) {
    LineReader lines(src);
    std::string_view line;
    std::vector<std::string_view> f;
    std::string scratch;
    bool overlong = false;
    while (lines.next(&line, &overlong)) {
      if (overlong) throw InputError(src.name(), lines.line_no(), "line longer than 64 KiB");
      if (trim(line).empty() || trim(line)[0] == '#') continue;
      if (!split_csv_line(line, f, scratch) || f.size() < 3 || f.size() > 4)
        throw InputError(
            src.name(), lines.line_no(),
            "expected start,end,label[,service] (" + std::to_string(f.size()) + " fields)");
      LabelWindow w;
      bool ok_s = parse_time_ns(f[0], &w.start_ns), ok_e = parse_time_ns(f[1], &w.end_ns);
      if (!ok_s || !ok_e) {
        if (lines.line_no() == 1 && out.empty()) continue;  // a header
        throw InputError(
            src.name(), lines.line_no(),
            fmt::format("'{}' is not a time (epoch seconds or RFC 3339)", ok_s ? f[1] : f[0]));
      }
      if (w.end_ns <= w.start_ns)
        throw InputError(src.name(), lines.line_no(), "end is not after start");
      w.label = std::string(trim(f[2]));
      if (w.label.empty()) throw InputError(src.name(), lines.line_no(), "empty label");
      if (f.size() == 4) w.service = std::string(trim(f[3]));
      out.push_back(std::move(w));
    }
  });
  return out;
}

std::string label_csv(const std::vector<LabelWindow>& ws) {
  std::string s = "start,end,label,service\n";
  auto fmt_t = [](int64_t ns) { return utc_seconds_text(ns); };
  for (const LabelWindow& w : ws)
    s += fmt::format("{},{},{},{}\n", fmt_t(w.start_ns), fmt_t(w.end_ns), w.label, w.service);
  return s;
}

std::vector<LabelWindow> fault_list_to_windows(const nlohmann::json& faults, int64_t window_s,
                                               const std::string& where) {
  std::vector<LabelWindow> out;
  auto one = [&](const nlohmann::json& e) {
    if (!e.is_object() || !e.contains("inject_time") || !e["inject_time"].is_string() ||
        !e.contains("inject_type") || !e["inject_type"].is_string())
      throw InputError(
          where, 0,
          "fault entry without inject_time/inject_type strings: " + e.dump().substr(0, 200));
    LabelWindow w;
    if (!parse_time_ns(e["inject_time"].get<std::string>(), &w.start_ns))
      throw InputError(where, 0, "bad inject_time " + e["inject_time"].dump());
    w.end_ns = w.start_ns + window_s * 1000000000;
    w.label = e["inject_type"].get<std::string>();
    if (e.contains("inject_pod") && e["inject_pod"].is_string())
      w.service = std::string(service_from_pod(e["inject_pod"].get<std::string>()));
    out.push_back(std::move(w));
  };
  if (faults.is_object()) {
    for (auto it = faults.begin(); it != faults.end(); ++it) {
      if (!it->is_array()) throw InputError(where, 0, "expected {\"HH\": [faults...]}");
      for (const auto& e : *it) one(e);
    }
  } else if (faults.is_array()) {
    for (const auto& e : faults) one(e);
  } else {
    throw InputError(where, 0, "expected a fault list object or array");
  }
  std::sort(out.begin(), out.end(),
            [](const LabelWindow& a, const LabelWindow& b) { return a.start_ns < b.start_ns; });
  return out;
}

LabelIndex::LabelIndex(std::vector<LabelWindow> w, std::string unlabelled)
    : w_(std::move(w)), unlabelled_(std::move(unlabelled)) {
  std::stable_sort(w_.begin(), w_.end(), [](const LabelWindow& a, const LabelWindow& b) {
    return a.start_ns < b.start_ns;
  });
  for (const LabelWindow& x : w_) max_len_ = std::max(max_len_, x.end_ns - x.start_ns);
}

std::string LabelIndex::label_of(const CallGraph& g) const {
  int64_t t = g.start_unix_ns;
  // Windows that can contain t start in (t - max_len, t].
  auto lo = std::lower_bound(w_.begin(), w_.end(), t - max_len_,
                             [](const LabelWindow& a, int64_t v) { return a.start_ns <= v; });
  for (auto it = lo; it != w_.end() && it->start_ns <= t; ++it) {
    if (t >= it->end_ns) continue;
    if (it->service.empty()) return it->label;
    for (const Edge& e : g.edges) {
      for (const std::string* n : {&e.caller, &e.callee}) {
        std::string_view node(*n);
        if (node.substr(0, node.find('#')) == it->service) return it->label;
      }
    }
  }
  return unlabelled_;
}

}  // namespace tracelm
