#include "encode/text_format.h"

#include <array>
#include <charconv>

namespace tracelm {

namespace {

enum Phrase { kSource, kEdgeId, kType, kDestination, kStart, kFinish, kNumPhrases };

std::string phrase(Phrase p, const EdgeText& e) {
  switch (p) {
    case kSource:
      return "source is " + *e.source;
    case kEdgeId:
      return "edge_id is " + e.edge_id;
    case kType:
      return "type is " + e.type;
    case kDestination:
      return "destination is " + e.destination;
    case kStart:
      return "communication starts at " + std::to_string(e.start_ms) + " milliseconds";
    case kFinish:
      return "communication finishes at " + std::to_string(e.finish_ms) + " milliseconds";
    default:
      return "";
  }
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

constexpr int64_t kMaxAbs = 1000000000000000;

}  // namespace

bool is_plain_name(std::string_view s) {
  if (s.empty() || s.size() > 255 || s.front() == ' ' || s.back() == ' ') return false;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f || c == ',' || c == '/' || c == ':' || c == '(' || c == ')' ||
        c == '<' || c == '>')
      return false;
  return true;
}

bool parse_int(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 17) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && *out <= kMaxAbs && *out >= -kMaxAbs &&
         !(s.size() > 1 && s[0] == '0') && !(s.size() > 2 && s[0] == '-' && s[1] == '0');
}

EdgeText edge_text(const Edge& e, bool tabular) {
  EdgeText t;
  if (tabular) t.source = e.caller;
  t.edge_id = tabular ? e.id.str() : std::to_string(e.id.last());
  t.destination = e.callee;
  t.type = std::string(call_type_name(e.type));
  t.start_ms = e.start_ms;
  t.finish_ms = e.finish_ms;
  return t;
}

std::string format_edge(const EdgeText& e, Rng* shuffle) {
  std::array<Phrase, kNumPhrases> order{kSource, kEdgeId, kType, kDestination, kStart, kFinish};
  size_t n = 0;
  std::array<Phrase, kNumPhrases> used{};
  for (Phrase p : order)
    if (p != kSource || e.source) used[n++] = p;
  if (shuffle) shuffle->shuffle(used.begin(), used.begin() + static_cast<long>(n));
  std::string s = "(";
  for (size_t i = 0; i < n; ++i) {
    if (i) s += ',';
    s += phrase(used[i], e);
  }
  s += ')';
  return s;
}

bool parse_edge(std::string_view line, bool want_source, EdgeText* out, std::string* error) {
  auto fail = [&](std::string m) {
    *error = std::move(m);
    return false;
  };
  if (line.size() < 2 || line.front() != '(' || line.back() != ')')
    return fail("expected an edge in parentheses");
  std::string_view body = line.substr(1, line.size() - 2);
  *out = EdgeText{};
  std::array<bool, kNumPhrases> seen{};
  size_t count = 0;
  while (true) {
    size_t comma = body.find(',');
    std::string_view ph = body.substr(0, comma);
    Phrase p;
    std::string_view v;
    auto ms_value = [&](std::string_view prefix, int64_t* dst) {
      std::string_view rest = ph.substr(prefix.size());
      constexpr std::string_view kMs = " milliseconds";
      if (rest.size() <= kMs.size() || rest.substr(rest.size() - kMs.size()) != kMs) return false;
      return parse_int(rest.substr(0, rest.size() - kMs.size()), dst);
    };
    if (starts_with(ph, "source is ")) {
      p = kSource;
      v = ph.substr(10);
      if (!is_plain_name(v)) return fail("bad source name '" + std::string(v.substr(0, 40)) + "'");
      out->source = std::string(v);
    } else if (starts_with(ph, "edge_id is ")) {
      p = kEdgeId;
      out->edge_id = std::string(ph.substr(11));
      if (out->edge_id.empty()) return fail("empty edge_id");
    } else if (starts_with(ph, "type is ")) {
      p = kType;
      out->type = std::string(ph.substr(8));
    } else if (starts_with(ph, "destination is ")) {
      p = kDestination;
      out->destination = std::string(ph.substr(15));
      if (!is_plain_name(out->destination))
        return fail("bad destination name '" + out->destination.substr(0, 40) + "'");
    } else if (starts_with(ph, "communication starts at ")) {
      p = kStart;
      if (!ms_value("communication starts at ", &out->start_ms))
        return fail("bad start time in '" + std::string(ph.substr(0, 80)) + "'");
    } else if (starts_with(ph, "communication finishes at ")) {
      p = kFinish;
      if (!ms_value("communication finishes at ", &out->finish_ms))
        return fail("bad finish time in '" + std::string(ph.substr(0, 80)) + "'");
    } else {
      return fail("unknown edge phrase '" + std::string(ph.substr(0, 80)) + "'");
    }
    if (seen[p]) return fail("repeated edge phrase '" + std::string(ph.substr(0, 40)) + "'");
    seen[p] = true;
    ++count;
    if (comma == std::string_view::npos) break;
    body.remove_prefix(comma + 1);
  }
  if (want_source != seen[kSource])
    return fail(want_source ? "edge without 'source is'" : "unexpected 'source is' phrase");
  for (Phrase p : {kEdgeId, kType, kDestination, kStart, kFinish})
    if (!seen[p]) {
      static const char* names[] = {"source", "edge_id", "type", "destination", "start", "finish"};
      return fail(std::string("edge without its ") + names[p] + " phrase");
    }
  return true;
}

const std::string* Attributes::get(std::string_view name) const {
  for (const auto& [k, v] : items)
    if (k == name) return &v;
  return nullptr;
}

std::optional<int64_t> Attributes::get_int(std::string_view name) const {
  const std::string* v = get(name);
  int64_t x;
  if (!v || !parse_int(*v, &x)) return std::nullopt;
  return x;
}

void Attributes::set(std::string name, std::string value) {
  for (auto& [k, v] : items)
    if (k == name) {
      v = std::move(value);
      return;
    }
  items.emplace_back(std::move(name), std::move(value));
}

std::string format_attributes(const Attributes& a, Rng* rng, double p_drop,
                              const std::vector<std::string_view>& keep) {
  std::vector<const std::pair<std::string, std::string>*> out;
  for (const auto& kv : a.items) {
    bool must = false;
    for (std::string_view k : keep) must = must || k == kv.first;
    if (rng && !must && p_drop > 0 && rng->chance(p_drop)) continue;
    out.push_back(&kv);
  }
  if (rng) rng->shuffle(out.begin(), out.end());
  std::string s;
  for (size_t i = 0; i < out.size(); ++i) {
    if (i) s += '/';
    s += out[i]->first;
    s += ':';
    s += out[i]->second;
  }
  return s;
}

bool parse_attributes(std::string_view text, Attributes* out, std::string* error) {
  out->items.clear();
  if (text.empty()) return true;
  while (true) {
    size_t slash = text.find('/');
    std::string_view item = text.substr(0, slash);
    size_t colon = item.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      *error = "expected name:value, got '" + std::string(item.substr(0, 80)) + "'";
      return false;
    }
    std::string name(item.substr(0, colon));
    if (out->items.size() >= 64) {
      *error = "more than 64 attributes";
      return false;
    }
    if (out->has(name)) {
      *error = "repeated attribute '" + name + "'";
      return false;
    }
    out->items.emplace_back(std::move(name), std::string(item.substr(colon + 1)));
    if (slash == std::string_view::npos) return true;
    text.remove_prefix(slash + 1);
  }
}

std::string_view LineScanner::peek() const {
  if (done()) return {};
  size_t nl = text_.find('\n', pos_);
  std::string_view l =
      text_.substr(pos_, nl == std::string_view::npos ? std::string_view::npos : nl - pos_);
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  return l;
}

std::string_view LineScanner::next() {
  std::string_view l = peek();
  last_ = pos_;
  size_t nl = text_.find('\n', pos_);
  pos_ = nl == std::string_view::npos ? text_.size() : nl + 1;
  return l;
}

}  // namespace tracelm
