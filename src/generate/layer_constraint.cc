#include "generate/layer_constraint.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/validate.h"

namespace tracelm {

enum class LayerConstraint::Step : uint8_t {
  kOpen,        // "<layer>\n" | "<split>\n"
  kEdgesOpen,   // "<edges>\n"
  kEdgeBegin,   // "(" | "</edges>\n"
  kPhraseHead,  // one of the phrase heads not yet written
  kEdgeId,
  kDest,
  kType,
  kStart,
  kFinish,
  kPhraseEnd,   // "," | ")\n" (with " milliseconds" before it for times)
  kSubsChoice,  // "<subgraph of edge_id " | "</layer>"  (split: "...0>" | "</split>")
  kSubK,        // layer: the edge id k
  kSubGt,       // layer: ">" after k
  kSubAttr,     // the name of an attribute not yet written
  kSubVal,      // an integer attribute's value
  kSubSep,      // "/" | "</subgraph>\n" (after a copied value too)
};

namespace {

using Step = LayerConstraint::Step;
using Ex = LayerConstraint::Ex;
using State = LayerConstraint::State;

constexpr int64_t kBig = 100'000'000'000'000'000;  // 1e17: no value goes above

// Choice tables: no option is a prefix of another in the same table.
constexpr std::string_view kOpenT[] = {"<layer>\n", "<split>\n"};
constexpr std::string_view kEdgeT[] = {"(", "</edges>\n"};
constexpr std::string_view kHeadT[] = {"edge_id is ", "destination is ", "type is ",
                                       "communication starts at ", "communication finishes at "};
constexpr std::string_view kTypeT[] = {"http", "rpc", "mc", "db", "mq"};
constexpr std::string_view kSubsT[] = {"<subgraph of edge_id ", "</layer>"};
constexpr std::string_view kSplitT[] = {"<subgraph of edge_id 0>", "</split>"};
// Child-line attributes; the order of the enum below.
constexpr std::string_view kAttrT[] = {"id:",
                                       "caller:",
                                       "start_node:",
                                       "start_edge_id:",
                                       "start_communication_at:",
                                       "latency:",
                                       "num_current_edges:",
                                       "remaining_depth:",
                                       "num_edges:",
                                       "num_subgraphs:"};
enum Attr : uint8_t { kAId, kACaller, kANode, kASid, kASca, kALat, kAC, kAR, kAN, kAS };
enum Table : uint8_t { kTOpen, kTEdge, kTHead, kTType, kTSubs, kTSplit, kTAttr };
struct TableView {
  const std::string_view* opts;
  int n;
};
TableView table(uint8_t t) {
  switch (t) {
    case kTOpen:
      return {kOpenT, 2};
    case kTEdge:
      return {kEdgeT, 2};
    case kTHead:
      return {kHeadT, 5};
    case kTType:
      return {kTypeT, 5};
    case kTSubs:
      return {kSubsT, 2};
    case kTSplit:
      return {kSplitT, 2};
    default:
      return {kAttrT, 10};
  }
}
enum Phrase : uint8_t { kPEdgeId, kPDest, kPType, kPStart, kPFinish };

bool name_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

int64_t pow10(int d) {
  int64_t p = 1;
  while (d-- > 0) p *= 10;
  return p;
}

void expect_lit(State& s, Step step, std::string_view text) {
  s.ex = Ex::kLit;
  s.step = step;
  size_t n = std::min(text.size(), sizeof s.buf);
  std::memcpy(s.buf, text.data(), n);
  s.len = static_cast<uint16_t>(n);
  s.pos = 0;
}

void expect_choice(State& s, Step step, uint8_t t, uint16_t alive) {
  s.step = step;
  if (alive == 0) {
    s.ex = Ex::kDead;
    return;
  }
  s.ex = Ex::kChoice;
  s.table = t;
  s.alive = alive;
  s.cpos = 0;
}

void expect_int(State& s, Step step, const IntSet& set) {
  s.step = step;
  if (set.empty()) {
    s.ex = Ex::kDead;
    return;
  }
  s.ex = Ex::kInt;
  s.set = set;
  s.val = 0;
  s.ndig = 0;
}

struct Appender {
  State& s;
  void operator()(std::string_view t) {
    size_t room = sizeof s.buf - s.len;
    size_t n = std::min(t.size(), room);
    std::memcpy(s.buf + s.len, t.data(), n);
    s.len = static_cast<uint16_t>(s.len + n);
  }
};

}  // namespace

// ---- IntSet ----

void IntSet::add(int64_t lo, int64_t hi) {
  if (lo > hi) return;
  if (n > 0 && lo <= iv[n - 1].second + 1) {
    iv[n - 1].second = std::max(iv[n - 1].second, hi);
    return;
  }
  if (n == static_cast<int>(iv.size())) return;
  iv[n++] = {lo, hi};
}

bool IntSet::contains(int64_t v) const { return intersects(v, v); }

bool IntSet::intersects(int64_t lo, int64_t hi) const {
  for (int i = 0; i < n; ++i)
    if (iv[i].first <= hi && lo <= iv[i].second) return true;
  return false;
}

bool IntSet::has_prefix(int64_t v, int digits) const {
  if (v == 0) return digits == 1 && contains(0);
  for (int d = 0; digits + d <= 18; ++d) {
    int64_t p = pow10(d);
    if (v > kBig / p) break;
    if (intersects(v * p, v * p + p - 1)) return true;
  }
  return false;
}

// ---- LayerSpec ----

bool LayerSpec::from_attributes(const Attributes& a, LayerSpec* out, std::string* error) {
  LayerSpec s;
  auto fail = [&](std::string m) {
    *error = std::move(m);
    return false;
  };
  const std::string* id = a.get("id");
  if (!id) return fail("no 'id' (service) in the conditions");
  s.service = *id;
  s.start_node = a.get("start_node") ? *a.get("start_node") : std::string(kUserNode);
  if (a.get("caller")) s.caller = *a.get("caller");
  s.root = !s.caller && s.start_node == kUserNode;
  for (auto [name, field] : {std::pair{"num_edges", &s.num_edges},
                             {"num_current_edges", &s.num_current_edges},
                             {"num_subgraphs", &s.num_subgraphs},
                             {"remaining_depth", &s.remaining_depth},
                             {"start_edge_id", &s.start_edge_id},
                             {"start_communication_at", &s.start_communication_at},
                             {"latency", &s.latency}}) {
    if (!a.has(name)) continue;
    *field = a.get_int(name);
    if (!*field || **field < 0) return fail(std::string("'") + name + "' is not a count >= 0");
  }
  if (s.root && !s.num_current_edges) s.num_current_edges = 1;
  if (s.num_current_edges && *s.num_current_edges < 1)
    return fail("num_current_edges must be at least 1");
  if (s.num_edges && s.num_current_edges && *s.num_edges < *s.num_current_edges)
    return fail("num_edges < num_current_edges");
  bool split = s.num_current_edges && *s.num_current_edges > 15;
  if (!split && s.remaining_depth && *s.remaining_depth == 0) {
    if (s.num_subgraphs && *s.num_subgraphs > 0) return fail("subgraphs with remaining_depth 0");
    if (s.num_edges && s.num_current_edges && *s.num_edges != *s.num_current_edges)
      return fail("edges below a layer with remaining_depth 0");
  }
  if (!split && s.remaining_depth && *s.remaining_depth > 0 && s.num_subgraphs &&
      *s.num_subgraphs == 0)
    return fail("remaining_depth > 0 without subgraphs");
  if (s.num_edges && s.remaining_depth && s.num_current_edges &&
      *s.num_edges < *s.num_current_edges + *s.remaining_depth)
    return fail("num_edges too small for remaining_depth");
  if (s.latency && s.start_communication_at && !s.root && *s.latency < *s.start_communication_at)
    return fail("latency < start_communication_at");
  *out = std::move(s);
  return true;
}

bool is_generatable_name(std::string_view s) {
  if (s.empty() || s.size() >= sizeof(LayerConstraint::EdgeRec::dest)) return false;
  for (unsigned char c : s)
    if (!name_char(c)) return false;
  return true;
}

bool LayerSpec::check_require(std::string* error) const {
  if (!require) return true;
  auto fail = [&](std::string m) {
    *error = std::move(m);
    return false;
  };
  const RequiredCall& r = *require;
  for (const std::string* n : {&r.dest, &r.child_dest}) {
    if (n == &r.child_dest && n->empty()) continue;
    if (!is_generatable_name(*n))
      return fail("required callee '" + *n +
                  "' is not a name of 1-31 letters, digits, '_', '.' or '-'");
  }
  for (const std::string* t : {&r.type, &r.child_type})
    if (!t->empty() && std::find(std::begin(kTypeT), std::end(kTypeT), *t) == std::end(kTypeT))
      return fail("required call type '" + *t + "' is not one of http rpc mc db mq");
  bool split = num_current_edges && *num_current_edges > 15;
  if (!r.child_dest.empty() && !split) {
    if (remaining_depth && *remaining_depth < 1)
      return fail("the required call needs a deeper layer, and remaining_depth is 0");
    if (num_subgraphs && *num_subgraphs < 1)
      return fail("the required call needs a subgraph, and num_subgraphs is 0");
    if (num_edges && num_current_edges && *num_edges <= *num_current_edges)
      return fail("the required call needs edges below this layer, and there are none");
  }
  return true;
}

// ---- LayerConstraint ----

LayerConstraint::LayerConstraint(const LayerSpec& spec, const ConstraintLimits& limits)
    : spec_(std::make_shared<const LayerSpec>(spec)), lim_(limits) {
  const LayerSpec& sp = *spec_;
  State& s = st_;
  if (sp.require && !sp.require->type.empty())
    for (int i = 0; i < 5; ++i)
      if (kTypeT[i] == sp.require->type) type_index_ = i;
  uint8_t alive = 0;
  if (!sp.num_current_edges || *sp.num_current_edges <= 15) alive |= 1;
  if (!sp.num_current_edges || *sp.num_current_edges > 15) alive |= 2;
  if (!sp.num_current_edges) alive = 1;  // unknown width: a layer
  s.rn = sp.num_edges ? *sp.num_edges : lim_.max_edges;
  expect_choice(s, Step::kOpen, kTOpen, alive);
}

bool LayerConstraint::req_pending(const State& s) const {
  const LayerSpec& sp = *spec_;
  return sp.require && !(sp.num_current_edges && *sp.num_current_edges > 15) && s.req_edge < 0;
}

bool LayerConstraint::req_sub_pending(const State& s) const {
  const LayerSpec& sp = *spec_;
  return sp.require && !sp.require->child_dest.empty() &&
         !(sp.num_current_edges && *sp.num_current_edges > 15) && !s.req_child;
}

bool LayerConstraint::done() const { return st_.ex == Ex::kEnd || st_.ex == Ex::kDone; }
bool LayerConstraint::dead() const { return st_.ex == Ex::kDead; }

bool LayerConstraint::feed(std::string_view text) {
  State s = st_;
  for (char ch : text)
    if (!feed_byte(s, static_cast<unsigned char>(ch))) return false;
  st_ = s;
  return true;
}

bool LayerConstraint::accepts(std::string_view text) const {
  if (text.empty()) return false;
  State s = st_;
  for (char ch : text)
    if (!feed_byte(s, static_cast<unsigned char>(ch))) return false;
  return true;
}

std::bitset<256> LayerConstraint::next_bytes() const { return next_bytes_of(st_); }

std::bitset<256> LayerConstraint::next_bytes_of(const State& s) const {
  std::bitset<256> out;
  auto after = [&]() {  // the bytes that may follow a complete value
    State t = s;
    complete(t);
    out |= next_bytes_of(t);
  };
  switch (s.ex) {
    case Ex::kLit:
      if (s.pos < s.len) out.set(static_cast<unsigned char>(s.buf[s.pos]));
      break;
    case Ex::kChoice: {
      TableView t = table(s.table);
      for (int i = 0; i < t.n; ++i)
        if ((s.alive >> i & 1) && s.cpos < t.opts[i].size())
          out.set(static_cast<unsigned char>(t.opts[i][s.cpos]));
      break;
    }
    case Ex::kInt:
      if (!(s.ndig > 0 && s.val == 0) && s.ndig < 17)
        for (int d = 0; d < 10; ++d)
          if (s.set.has_prefix(s.val * 10 + d, s.ndig + 1)) out.set('0' + static_cast<size_t>(d));
      if (s.ndig > 0 && s.set.contains(s.val)) after();
      break;
    case Ex::kName:
      if (known_names()) {
        std::string_view p(s.name, s.nlen);
        const std::vector<std::string>& v = *spec_->names;
        for (auto it = std::lower_bound(v.begin(), v.end(), p);
             it != v.end() && std::string_view(*it).starts_with(p); ++it) {
          if (it->size() > p.size())
            out.set(static_cast<unsigned char>((*it)[p.size()]));
          else
            after();
        }
        break;
      }
      if (s.nlen < lim_.max_name && s.nlen < sizeof s.name)
        for (int b = 0; b < 256; ++b)
          if (name_char(static_cast<unsigned char>(b))) out.set(static_cast<size_t>(b));
      if (s.nlen > 0 && !is_missing_marker(std::string_view(s.name, s.nlen))) after();
      break;
    case Ex::kEnd:
      out.set('\n');
      break;
    default:
      break;
  }
  return out;
}

bool LayerConstraint::feed_byte(State& s, unsigned char ch) const {
  switch (s.ex) {
    case Ex::kLit:
      if (s.pos >= s.len || static_cast<unsigned char>(s.buf[s.pos]) != ch) return false;
      if (++s.pos == s.len) complete(s);
      return true;
    case Ex::kChoice: {
      TableView t = table(s.table);
      uint16_t alive = 0;
      for (int i = 0; i < t.n; ++i)
        if ((s.alive >> i & 1) && s.cpos < t.opts[i].size() &&
            static_cast<unsigned char>(t.opts[i][s.cpos]) == ch)
          alive |= static_cast<uint16_t>(1 << i);
      if (!alive) return false;
      s.alive = alive;
      ++s.cpos;
      for (int i = 0; i < t.n; ++i)
        if ((alive >> i & 1) && t.opts[i].size() == s.cpos) {
          s.choice = static_cast<uint8_t>(i);
          complete(s);
          break;
        }
      return true;
    }
    case Ex::kInt:
      if (ch >= '0' && ch <= '9') {
        if (s.ndig > 0 && s.val == 0) return false;  // no leading zeros
        if (s.ndig >= 17) return false;
        int64_t v = s.val * 10 + (ch - '0');
        if (!s.set.has_prefix(v, s.ndig + 1)) return false;
        s.val = v;
        ++s.ndig;
        return true;
      }
      if (s.ndig == 0 || !s.set.contains(s.val)) return false;
      complete(s);
      return feed_byte(s, ch);
    case Ex::kName:
      if (known_names()) {
        const std::vector<std::string>& v = *spec_->names;
        std::string_view p(s.name, s.nlen);
        if (name_char(ch) && s.nlen + 1 < sizeof s.name) {
          s.name[s.nlen] = static_cast<char>(ch);
          std::string_view q(s.name, s.nlen + 1u);
          auto it = std::lower_bound(v.begin(), v.end(), q);
          if (it != v.end() && std::string_view(*it).starts_with(q)) {
            ++s.nlen;
            return true;
          }
        }
        if (!std::binary_search(v.begin(), v.end(), p)) return false;
        complete(s);
        return feed_byte(s, ch);
      }
      if (name_char(ch)) {
        if (s.nlen >= lim_.max_name || s.nlen >= sizeof s.name) return false;
        s.name[s.nlen++] = static_cast<char>(ch);
        return true;
      }
      if (s.nlen == 0 || is_missing_marker(std::string_view(s.name, s.nlen))) return false;
      complete(s);
      return feed_byte(s, ch);
    case Ex::kEnd:
      if (ch != '\n') return false;
      s.ex = Ex::kDone;
      return true;
    case Ex::kDone:
    case Ex::kDead:
      return false;
  }
  return false;
}

void LayerConstraint::open_phrase(State& s) const {
  uint8_t alive = s.phrases_left;
  expect_choice(s, Step::kPhraseHead, kTHead, alive);
}

namespace {

// Feasibility of child lines (see the header): which num_edges n a child
// with c edges and remaining depth r may take, so that the rest can still be
// completed.
IntSet unite(const IntSet& a, const IntSet& b) {
  std::vector<std::pair<int64_t, int64_t>> v(a.iv.begin(), a.iv.begin() + a.n);
  v.insert(v.end(), b.iv.begin(), b.iv.begin() + b.n);
  std::sort(v.begin(), v.end());
  IntSet out;
  for (auto [lo, hi] : v) out.add(lo, hi);
  return out;
}

struct Budget {
  bool split;      // items of a split (c and n both sum exactly)
  bool exact;      // num_edges known: n sums exactly to rn
  int64_t rn, rc;  // remaining n budget, remaining c budget (split)
  int64_t T;       // the depth target (-1: unknown)
  bool need_deep;  // no child with remaining_depth T yet
  int64_t m_lo, m_hi;
  int64_t max_depth;

  IntSet good_n(int64_t c, int64_t r) const {
    IntSet out;
    bool nd = need_deep && r != T;
    int64_t extra = nd ? T : 0;
    int64_t lo = r == 0 ? c : c + r;
    int64_t hi = r == 0 ? c : rn;
    if (lo > hi || lo > rn) return out;
    int64_t m1 = std::max<int64_t>(1, m_lo);
    if (!split) {
      // further lines: each >= 1 edge, the deep one T + 1
      int64_t bmax = m_hi >= m1 ? rn - m1 - extra : -1;
      bool zero = m_lo == 0 && !nd;
      if (!exact) {
        int64_t top = std::max(zero ? rn : -1, bmax);
        out.add(lo, std::min(hi, top));
        return out;
      }
      out.add(lo, std::min(hi, bmax));
      if (zero && rn >= lo && rn <= hi && rn > bmax) out.add(rn, rn);
      return out;
    }
    int64_t rc2 = rc - c;
    if (rc2 < 0) return out;
    if (m_hi >= m1 && rc2 >= m1) {
      int64_t base = rn - rc2;  // n + (edges below the further items) = base
      if (T == 0) {
        if (base >= lo && base <= hi) out.add(base, base);
      } else {
        out.add(lo, std::min(hi, base - extra));
      }
    }
    if (m_lo == 0 && rc2 == 0 && !nd)
      out = unite(out, exact ? (rn >= lo && rn <= hi ? IntSet::range(rn, rn) : IntSet{})
                             : IntSet::range(lo, std::min(hi, rn)));
    return out;
  }
  int64_t r_max() const { return T >= 0 ? T : max_depth; }
};

// The values the attribute s.attr (one of num_current_edges c,
// remaining_depth r, num_edges n, num_subgraphs s) may take, given those of
// the four already written: every value some completion of the line uses.
IntSet joint_set(const State& s, const Budget& b, int64_t cmax) {
  const bool kc = s.known >> kAC & 1, kr = s.known >> kAR & 1, kn = s.known >> kAN & 1,
             ks = s.known >> kAS & 1;
  int64_t dom = s.attr == kAC ? cmax : s.attr == kAR ? b.r_max() : s.attr == kAN ? b.rn : 15;
  if (dom < 0) return {};
  std::vector<int32_t> diff(static_cast<size_t>(dom) + 2, 0);
  auto mark = [&](int64_t lo, int64_t hi) {
    lo = std::max<int64_t>(lo, 0);
    hi = std::min(hi, dom);
    if (lo > hi) return;
    ++diff[static_cast<size_t>(lo)];
    --diff[static_cast<size_t>(hi) + 1];
  };
  const int64_t c0 = kc ? s.c : 1, c1 = kc ? s.c : cmax;
  const int64_t r0 = kr ? s.r : 0, r1 = kr ? s.r : b.r_max();
  for (int64_t c = c0; c <= c1; ++c)
    for (int64_t r = r0; r <= r1; ++r) {
      IntSet g = b.good_n(c, r);
      if (kn) {
        if (!g.contains(s.n)) continue;
        g = IntSet::range(s.n, s.n);
      }
      if (g.empty()) continue;
      int64_t gmax = g.iv[static_cast<size_t>(g.n - 1)].second;
      int64_t slo, shi;
      if (c > 15) {
        slo = 2;
        shi = std::min<int64_t>(5, c);
      } else if (r == 0) {
        slo = shi = 0;
      } else {
        slo = 1;
        shi = std::min(c, gmax - c - r + 1);
      }
      if (slo > shi || (ks && (s.sg < slo || s.sg > shi))) continue;
      // A layer with sg subgraphs and depth r needs sg + r - 1 edges below it.
      int64_t nmin = ks && c <= 15 && r > 0 ? s.sg + c + r - 1 : 0;
      switch (s.attr) {
        case kAC:
          mark(c, c);
          break;
        case kAR:
          mark(r, r);
          break;
        case kAN:
          for (int i = 0; i < g.n; ++i)
            mark(std::max(g.iv[static_cast<size_t>(i)].first, nmin),
                 g.iv[static_cast<size_t>(i)].second);
          break;
        default:
          mark(slo, shi);
          break;
      }
    }
  IntSet out;
  int64_t run = 0;
  for (int64_t v = 0; v <= dom; ++v) {
    run += diff[static_cast<size_t>(v)];
    if (run > 0) out.add(v, v);
  }
  return out;
}

}  // namespace

void LayerConstraint::open_subs(State& s) const {
  const LayerSpec& sp = *spec_;
  bool split = sp.num_current_edges && *sp.num_current_edges > 15;
  bool can_line, can_close;
  if (split) {
    can_line = sp.num_subgraphs ? s.subs_done < *sp.num_subgraphs : s.rc > 0;
    can_close = sp.num_subgraphs ? s.subs_done == *sp.num_subgraphs : s.rc == 0 && s.rn == 0;
    expect_choice(s, Step::kSubsChoice, kTSplit,
                  static_cast<uint8_t>((can_line ? 1 : 0) | (can_close ? 2 : 0)));
    return;
  }
  int64_t last_id = s.nedges ? s.edges[static_cast<size_t>(s.nedges - 1)].id : -1;
  bool depth_ok = !sp.remaining_depth || *sp.remaining_depth >= 1;
  if (sp.num_subgraphs) {
    can_line = s.subs_done < *sp.num_subgraphs;
    can_close = s.subs_done == *sp.num_subgraphs;
  } else {
    can_line = depth_ok && s.last_k < last_id && s.rn >= 1;
    can_close = !s.need_deep && (sp.num_edges ? s.rn == 0 : true);
  }
  if (req_sub_pending(s)) can_close = false;
  expect_choice(s, Step::kSubsChoice, kTSubs,
                static_cast<uint8_t>((can_line ? 1 : 0) | (can_close ? 2 : 0)));
}

void LayerConstraint::complete(State& s) const {
  const LayerSpec& sp = *spec_;
  const bool split = sp.num_current_edges && *sp.num_current_edges > 15;
  const int64_t sca0 = sp.start_communication_at.value_or(0);
  const int64_t sid0 = sp.start_edge_id.value_or(sp.root ? 0 : 1);
  const bool root_latency = sp.root && sp.latency.has_value();
  const int64_t lat = sp.latency ? (sp.root ? sca0 + *sp.latency : *sp.latency) : lim_.max_time_ms;
  auto budget = [&]() {
    Budget b;
    b.split = split;
    b.exact = sp.num_edges.has_value();
    b.rn = s.rn;
    b.rc = s.rc;
    b.T = sp.remaining_depth ? *sp.remaining_depth - (split ? 0 : 1) : -1;
    b.need_deep = s.need_deep;
    b.m_lo = s.m_lo;
    b.m_hi = s.m_hi;
    b.max_depth = lim_.max_depth;
    return b;
  };
  switch (s.step) {
    case Step::kOpen:
      if (s.choice == 0) {
        expect_lit(s, Step::kEdgesOpen, "<edges>\n");
      } else {
        // A split: items cover all N edges and all num_edges.
        s.rc = *sp.num_current_edges;
        s.rn = sp.num_edges ? *sp.num_edges : lim_.max_edges;
        s.need_deep = sp.remaining_depth && *sp.remaining_depth > 0;
        s.next_sid = sid0;
        open_subs(s);
      }
      return;
    case Step::kEdgesOpen:
    case Step::kPhraseEnd:
      if (s.step == Step::kPhraseEnd && s.phrases_left == 0) {
        if (req_pending(s)) {
          const RequiredCall& r = *sp.require;
          if (s.cur.dlen == r.dest.size() &&
              std::memcmp(s.cur.dest, r.dest.data(), s.cur.dlen) == 0 &&
              (type_index_ < 0 || s.cur.type == type_index_))
            s.req_edge = static_cast<int16_t>(s.nedges);
        }
        s.edges[static_cast<size_t>(s.nedges++)] = s.cur;
      } else if (s.step == Step::kPhraseEnd) {
        open_phrase(s);
        return;
      }
      {
        uint8_t alive = 0;
        int64_t want = sp.num_current_edges.value_or(-1);
        if (want >= 0) {
          alive = s.nedges < want ? 1 : 2;
        } else {
          if (s.nedges < 15) alive |= 1;
          if (s.nedges >= 1 && !req_pending(s)) alive |= 2;
        }
        expect_choice(s, Step::kEdgeBegin, kTEdge, alive);
      }
      return;
    case Step::kEdgeBegin:
      if (s.choice == 0) {
        s.cur = EdgeRec{};
        s.cur.id = sid0 + s.nedges;
        s.phrases_left = 0x1f;
        s.has_start = s.has_finish = false;
        open_phrase(s);
      } else {
        // "</edges>\n": the children lines.
        s.rn = (sp.num_edges ? *sp.num_edges : lim_.max_edges) - s.nedges;
        s.need_deep = sp.remaining_depth && *sp.remaining_depth >= 1;
        open_subs(s);
      }
      return;
    case Step::kPhraseHead: {
      s.phrases_left = static_cast<uint8_t>(s.phrases_left & ~(1u << s.choice));
      const bool first = s.nedges == 0;
      // The last edge meets the requirement when no earlier edge did.
      const bool force = req_pending(s) && s.nedges == sp.num_current_edges.value_or(15) - 1;
      if (force && s.choice == kPDest) {
        const std::string& d = sp.require->dest;
        std::memcpy(s.name, d.data(), d.size());
        s.nlen = static_cast<uint8_t>(d.size());
        expect_lit(s, Step::kDest, d);
        return;
      }
      if (force && s.choice == kPType && type_index_ >= 0) {
        expect_choice(s, Step::kType, kTType, static_cast<uint16_t>(1u << type_index_));
        return;
      }
      switch (s.choice) {
        case kPEdgeId:
          expect_int(s, Step::kEdgeId, IntSet::range(s.cur.id, s.cur.id));
          return;
        case kPDest:
          s.ex = Ex::kName;
          s.step = Step::kDest;
          s.nlen = 0;
          return;
        case kPType:
          expect_choice(s, Step::kType, kTType, 0x1f);
          return;
        case kPStart: {
          IntSet set = first ? IntSet::range(sca0, sca0)
                             : IntSet::range(sca0, s.has_finish ? s.cur.finish : lat);
          expect_int(s, Step::kStart, set);
          return;
        }
        default: {
          int64_t lo = s.has_start ? s.cur.start : sca0;
          IntSet set = root_latency && first ? IntSet::range(lat, lat) : IntSet::range(lo, lat);
          expect_int(s, Step::kFinish, set);
          return;
        }
      }
    }
    case Step::kEdgeId:
    case Step::kDest:
    case Step::kType:
    case Step::kStart:
    case Step::kFinish: {
      bool ms = false;
      if (s.step == Step::kType) s.cur.type = s.choice;
      if (s.step == Step::kDest) {
        std::memcpy(s.cur.dest, s.name, s.nlen);
        s.cur.dlen = s.nlen;
      } else if (s.step == Step::kStart) {
        s.cur.start = s.val;
        s.has_start = true;
        ms = true;
      } else if (s.step == Step::kFinish) {
        s.cur.finish = s.val;
        s.has_finish = true;
        ms = true;
      }
      std::string_view end = s.phrases_left ? "," : ")\n";
      expect_lit(s, Step::kPhraseEnd,
                 ms ? (s.phrases_left ? " milliseconds," : " milliseconds)\n") : end);
      return;
    }
    case Step::kSubsChoice:
      if (s.choice == 1) {
        s.ex = Ex::kEnd;
        return;
      }
      s.attrs_left = 0x3ff;
      s.known = 0;
      if (split) {
        s.m_lo = sp.num_subgraphs ? *sp.num_subgraphs - s.subs_done - 1 : 0;
        s.m_hi = sp.num_subgraphs ? s.m_lo : s.rc - 1;
        s.k = 0;
        expect_choice(s, Step::kSubAttr, kTAttr, s.attrs_left);
      } else {
        int64_t last_id = s.edges[static_cast<size_t>(s.nedges - 1)].id;
        int64_t after = sp.num_subgraphs ? *sp.num_subgraphs - s.subs_done - 1 : 0;
        int64_t lo = std::max(s.last_k + 1, s.edges[0].id);
        int64_t hi = last_id - after;
        if (req_sub_pending(s)) {  // do not pass the required edge's line
          int64_t rk = s.edges[static_cast<size_t>(s.req_edge)].id;
          hi = std::min(hi, rk);
          if (sp.num_subgraphs && after == 0) lo = std::max(lo, rk);  // the last line
        }
        expect_int(s, Step::kSubK, IntSet::range(lo, hi));
      }
      return;
    case Step::kSubK: {
      s.k = s.val;
      int64_t last_id = s.edges[static_cast<size_t>(s.nedges - 1)].id;
      s.m_lo = sp.num_subgraphs ? *sp.num_subgraphs - s.subs_done - 1 : 0;
      s.m_hi = sp.num_subgraphs ? s.m_lo : last_id - s.k;
      if (req_sub_pending(s)) {
        if (s.k == s.edges[static_cast<size_t>(s.req_edge)].id)
          s.req_child = true;
        else
          s.m_lo = std::max<int64_t>(s.m_lo, 1);  // the required edge's line is still due
      }
      expect_lit(s, Step::kSubGt, ">");
      return;
    }
    case Step::kSubGt:
      expect_choice(s, Step::kSubAttr, kTAttr, s.attrs_left);
      return;
    case Step::kSubAttr: {
      s.attr = s.choice;
      s.attrs_left = static_cast<uint16_t>(s.attrs_left & ~(1u << s.attr));
      std::string_view sep = s.attrs_left ? "/" : "</subgraph>\n";
      auto copy = [&](std::string_view value) {
        s.len = 0;
        Appender add{s};
        add(value);
        add(sep);
        s.ex = Ex::kLit;
        s.step = Step::kSubSep;
        s.pos = 0;
      };
      const EdgeRec* e = split ? nullptr : &s.edges[static_cast<size_t>(s.k - s.edges[0].id)];
      switch (s.attr) {
        case kAId:
          copy(sp.service);
          return;
        case kACaller:
          copy(split ? (sp.caller ? std::string_view(*sp.caller) : kUserNode)
                     : std::string_view(sp.start_node));
          return;
        case kANode:
          copy(split ? std::string_view(sp.start_node) : std::string_view(e->dest, e->dlen));
          return;
        case kASid:
          expect_int(s, Step::kSubVal,
                     split ? IntSet::range(s.next_sid, s.next_sid)
                           : IntSet::range(1, lim_.max_start_edge_id));
          return;
        case kASca: {
          int64_t lo = split ? sca0 : e->start;
          int64_t hi = split ? (s.subs_done == 0 ? sca0 : lat) : e->finish;
          if (s.known & (1u << kALat)) hi = std::min(hi, s.lat);
          expect_int(s, Step::kSubVal, IntSet::range(lo, hi));
          return;
        }
        case kALat: {
          if (split) {
            int64_t l = sp.latency.value_or(lat);
            expect_int(s, Step::kSubVal, IntSet::range(l, l));
          } else {
            int64_t lo = (s.known & (1u << kASca)) ? s.sca : e->start;
            expect_int(s, Step::kSubVal, IntSet::range(lo, e->finish));
          }
          return;
        }
        default:
          expect_int(
              s, Step::kSubVal,
              joint_set(s, budget(), split ? std::min(s.rc, *sp.num_current_edges - 1) : s.rn));
          return;
      }
    }
    case Step::kSubVal: {
      switch (s.attr) {
        case kASca:
          s.sca = s.val;
          break;
        case kALat:
          s.lat = s.val;
          break;
        case kAC:
          s.c = s.val;
          break;
        case kAR:
          s.r = s.val;
          break;
        case kAN:
          s.n = s.val;
          break;
        case kAS:
          s.sg = s.val;
          break;
        default:
          break;
      }
      s.known = static_cast<uint16_t>(s.known | (1u << s.attr));
      expect_lit(s, Step::kSubSep, s.attrs_left ? "/" : "</subgraph>\n");
      return;
    }
    case Step::kSubSep: {
      if (s.attrs_left) {
        expect_choice(s, Step::kSubAttr, kTAttr, s.attrs_left);
        return;
      }
      Budget b = budget();
      if (s.r == b.T) s.need_deep = false;
      s.rn -= s.n;
      s.rc -= s.c;
      ++s.subs_done;
      s.last_k = s.k;
      s.next_sid += s.c;
      open_subs(s);
      return;
    }
  }
}

}  // namespace tracelm
