#include "generate/layer_constraint.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "core/validate.h"
#include "encode/unit_format.h"
#include "util/rng.h"

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

// Choice tables: no option is a prefix of another in the same table.
// The literals of docs/encodings.md §2.1 (tag names: encode/unit_format.h).
constexpr std::string_view kOpenT[] = {"<layer>\n", "<split>\n"};
constexpr std::string_view kEdgeT[] = {"(", "</edges>\n"};
// An edge's phrase heads in the encoding's own order (encode/text_format.cc);
// LayerSpec::fixed_order writes them with the destination first (next_in_order).
constexpr std::string_view kHeadT[] = {"edge_id is ", "type is ", "destination is ",
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
enum Phrase : uint8_t { kPEdgeId, kPType, kPDest, kPStart, kPFinish };

bool spec_is_split(const LayerSpec& sp) {
  return sp.num_current_edges && is_split(*sp.num_current_edges);
}

bool name_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
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

// ---- LayerSpec ----

bool LayerSpec::from_attributes(const Attributes& a, LayerSpec* out, std::string* error) {
  LayerConditions c;
  if (!LayerConditions::from_attributes(a, &c, error)) return false;
  return from_conditions(c, out, error);
}

bool LayerSpec::from_conditions(const LayerConditions& c, LayerSpec* out, std::string* error) {
  LayerSpec s;
  auto fail = [&](std::string m) {
    *error = std::move(m);
    return false;
  };
  s.service = c.id;
  s.start_node = c.start_node.value_or(std::string(kUserNode));
  s.caller = c.caller;
  s.root = !s.caller && s.start_node == kUserNode;
  s.num_edges = c.num_edges;
  s.num_current_edges = c.num_current_edges;
  s.num_subgraphs = c.num_subgraphs;
  s.remaining_depth = c.remaining_depth;
  s.start_edge_id = c.start_edge_id;
  s.start_communication_at = c.start_communication_at;
  s.latency = c.latency;
  for (auto [name, field] : {std::pair{"num_edges", &s.num_edges},
                             {"num_current_edges", &s.num_current_edges},
                             {"num_subgraphs", &s.num_subgraphs},
                             {"remaining_depth", &s.remaining_depth},
                             {"start_edge_id", &s.start_edge_id},
                             {"start_communication_at", &s.start_communication_at},
                             {"latency", &s.latency}})
    if (*field && **field < 0) return fail(std::string("'") + name + "' is not a count >= 0");
  if (s.root && !s.num_current_edges) s.num_current_edges = 1;
  if (s.num_current_edges && *s.num_current_edges < 1)
    return fail("num_current_edges must be at least 1");
  if (s.num_edges && s.num_current_edges && *s.num_edges < *s.num_current_edges)
    return fail("num_edges < num_current_edges");
  bool split = s.num_current_edges && is_split(*s.num_current_edges);
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

bool is_known_callee_name(std::string_view s) {
  return is_generatable_name(s) && !is_missing_marker(s);
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
  bool split = num_current_edges && is_split(*num_current_edges);
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

std::shared_ptr<const LayerTrie> LayerTrie::of(const std::vector<std::vector<std::string>>& seqs,
                                               size_t width,
                                               const std::function<bool(const std::string&)>& keep,
                                               const std::vector<std::string>* callers) {
  auto t = std::make_shared<LayerTrie>();
  t->nodes.emplace_back();
  for (const std::vector<std::string>& q : seqs) {
    if (q.size() != width || !std::all_of(q.begin(), q.end(), keep)) continue;
    size_t node = 0;
    for (size_t i = 0; i < q.size(); ++i) {
      Node& n = t->nodes[node];
      auto it = std::lower_bound(n.names.begin(), n.names.end(), q[i]);
      size_t at = static_cast<size_t>(it - n.names.begin());
      if (it == n.names.end() || *it != q[i]) {
        const int32_t next = i + 1 < q.size() ? static_cast<int32_t>(t->nodes.size()) : -1;
        n.names.insert(it, q[i]);
        n.next.insert(n.next.begin() + static_cast<std::ptrdiff_t>(at), next);
        if (next >= 0) t->nodes.emplace_back();  // invalidates n
      }
      node = static_cast<size_t>(t->nodes[node].next[at]);
    }
  }
  if (t->nodes[0].names.empty()) return nullptr;  // no sequence of this width
  if (callers)
    for (Node& n : t->nodes)
      std::set_intersection(n.names.begin(), n.names.end(), callers->begin(), callers->end(),
                            std::back_inserter(n.callers));
  return t;
}

LayerConstraint::LayerConstraint(const LayerSpec& spec, const ConstraintLimits& limits)
    : spec_(std::make_shared<const LayerSpec>(spec)), lim_(limits) {
  const LayerSpec& sp = *spec_;
  State& s = st_;
  if (sp.require && !sp.require->type.empty())
    for (int i = 0; i < 5; ++i)
      if (kTypeT[i] == sp.require->type) type_index_ = i;
  uint8_t alive = 0;
  if (!sp.num_current_edges || !is_split(*sp.num_current_edges)) alive |= 1;
  if (!sp.num_current_edges || is_split(*sp.num_current_edges)) alive |= 2;
  if (!sp.num_current_edges) alive = 1;  // unknown width: a layer
  s.edges_left = sp.num_edges ? *sp.num_edges : lim_.max_edges;
  if (sp.layers && !sp.layers->nodes.empty() && !sp.require && !spec_is_split(sp) && known_names())
    s.seen = 0;
  expect_choice(s, Step::kOpen, kTOpen, alive);
}

bool LayerConstraint::req_pending(const State& s) const {
  const LayerSpec& sp = *spec_;
  return sp.require && !spec_is_split(sp) && s.req_edge < 0;
}

bool LayerConstraint::req_sub_pending(const State& s) const {
  const LayerSpec& sp = *spec_;
  return sp.require && !sp.require->child_dest.empty() && !spec_is_split(sp) && !s.req_child;
}

bool LayerConstraint::callable(const State& s, int i) const {
  const std::vector<std::string>& c = *spec_->callers;
  const EdgeRec& e = s.edges[static_cast<size_t>(i)];
  return std::binary_search(c.begin(), c.end(), std::string_view(e.dest, e.dlen));
}

IntSet LayerConstraint::callable_edges(const State& s, int64_t lo, int64_t hi,
                                       int64_t after) const {
  const LayerSpec& sp = *spec_;
  if (!sp.callers || sp.callers->empty() || sp.require || lo > hi) return IntSet::range(lo, hi);
  std::vector<int64_t> ids;  // edges to callers from lo on
  for (int i = 0; i < s.nedges; ++i)
    if (s.edges[static_cast<size_t>(i)].id >= lo && callable(s, i))
      ids.push_back(s.edges[static_cast<size_t>(i)].id);
  IntSet out;  // runs of consecutive ids as intervals (an IntSet holds 8)
  const size_t n =
      ids.size() - std::min(ids.size(), static_cast<size_t>(std::max<int64_t>(0, after)));
  for (size_t j = 0; j < n && ids[j] <= hi;) {
    size_t r = j;
    while (r + 1 < n && ids[r + 1] == ids[r] + 1 && ids[r + 1] <= hi) ++r;
    out.add(ids[j], ids[r]);
    j = r + 1;
  }
  return out.empty() ? IntSet::range(lo, hi) : out;
}

SubtreeSize LayerConstraint::cap_of(const State& s, int i) const {
  const EdgeRec& e = s.edges[static_cast<size_t>(i)];
  const SubtreeSize* c = find_named(*spec_->subtree_caps, std::string_view(e.dest, e.dlen));
  return c ? *c : SubtreeSize{kNoCap, kNoCap};
}

int64_t LayerConstraint::duration_cap(const State& s) const {
  if (!spec_->durations || spec_->durations->empty()) return kNoCap;
  auto cap = [&](std::string_view name) {
    const int64_t* ms = find_named(*spec_->durations, name);
    return ms ? *ms : kNoCap;
  };
  if (!(s.phrases_left >> kPDest & 1)) return cap(std::string_view(s.cur.dest, s.cur.dlen));
  if (s.seen < 0) return kNoCap;
  int64_t most = 0;  // the destination is still to come: the longest it may take
  for (const std::string& n : spec_->layers->nodes[static_cast<size_t>(s.seen)].names)
    most = std::max(most, cap(n));
  return most;
}

namespace {

// plain ∩ [lo, hi], or plain when that is empty.
IntSet narrowed(const IntSet& plain, int64_t lo, int64_t hi) {
  IntSet out;
  for (int j = 0; j < plain.n; ++j) {
    int64_t a = std::max(plain.iv[static_cast<size_t>(j)].first, lo);
    int64_t b = std::min(plain.iv[static_cast<size_t>(j)].second, hi);
    if (a <= b) out.add(a, b);
  }
  return out.empty() ? plain : out;
}

// a x b for a, b >= 0, at most `cap` (a stats.json from elsewhere may hold any numbers).
int64_t capped_product(int64_t a, int64_t b, int64_t cap) {
  if (a <= 0 || b <= 0) return 0;
  return a > cap / b ? cap : std::min(cap, a * b);
}

}  // namespace

IntSet LayerConstraint::capped_sizes(const State& s, const IntSet& plain) const {
  const LayerSpec& sp = *spec_;
  if (!sp.subtree_caps || sp.subtree_caps->empty() || sp.require) return plain;
  const bool any_edge = !sp.callers || sp.callers->empty();
  SubtreeSize cap{kNoCap, kNoCap};
  std::array<int64_t, 16> rest{};  // caps of the later edges the remaining lines may name
  std::array<int64_t, 16> owed{};  // the least of the later edges to callees never a leaf
  size_t nrest = 0, nowed = 0;
  for (int i = 0; i < s.nedges; ++i) {
    const int64_t id = s.edges[static_cast<size_t>(i)].id;
    if (id == s.sub_k) cap = cap_of(s, i);
    if (id > s.sub_k && (any_edge || callable(s, i))) {
      const SubtreeSize c = cap_of(s, i);
      rest[nrest++] = c.below;
      if (int64_t l = least_of(c); l > 0) owed[nowed++] = l;
    }
  }
  auto known = [&](int a) { return (s.known >> a & 1) != 0; };
  // The least num_edges this line may take: what the caps of the later lines cannot hold.
  const size_t lines = static_cast<size_t>(std::max<int64_t>(0, s.more_lines_max));
  int64_t rest_sum = kNoCap;  // unbounded when the lines may name other edges (no callers left)
  if (nrest >= lines) {
    std::sort(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(nrest),
              std::greater<int64_t>());
    rest_sum = 0;
    for (size_t j = 0; j < lines; ++j) rest_sum = std::min(kNoCap, rest_sum + rest[j]);
  }
  // The least: X's fewest calls below one call (when trusted), and what the later lines'
  // caps cannot hold. The most: X's cap, and what leaves the later lines their least (the
  // smallest leasts of the later edges never a leaf, 1 for each other line).
  const int64_t lo =
      std::max(least_of(cap), sp.num_edges ? s.edges_left - rest_sum : 0);  // else no budget
  const size_t due = static_cast<size_t>(std::max<int64_t>(0, s.more_lines_min));
  std::sort(owed.begin(), owed.begin() + static_cast<std::ptrdiff_t>(nowed));
  int64_t reserve = static_cast<int64_t>(due - std::min(due, nowed));
  for (size_t j = 0; j < std::min(due, nowed); ++j) reserve += owed[j];
  const int64_t most = std::min(cap.below, sp.num_edges ? s.edges_left - reserve : kNoCap);
  const int64_t m = cap.child_below;
  const int64_t w = cap.width == SubtreeSize::kUnknown ? kNoCap : cap.width;
  const int64_t width = known(kAC) ? s.sub_width : w;         // the line's width, or its cap
  const int64_t subs = known(kAS) ? s.sub_subgraphs : width;  // its subgraphs, or their cap
  // Each rule narrows what the earlier ones left, and is dropped when it would leave nothing.
  IntSet out = plain;
  auto rule = [&](int64_t a, int64_t b) { out = narrowed(out, a, b); };
  switch (s.attr) {
    case kAN:  // num_edges <= most, >= lo, and <= width + subgraphs x child_below
      rule(lo, most);
      if (width < kNoCap && subs < kNoCap && m < kNoCap)
        rule(0, width + capped_product(subs, m, kNoCap));
      break;
    case kAC:  // num_current_edges
      if (!known(kAN) && (most < kNoCap || lo > 0)) {
        // Width + subgraphs <= most (each subgraph has an edge), and enough width to reach
        // lo (num_edges <= width + subgraphs x child_below, subgraphs <= width): else a width
        // written before num_edges would force num_edges past the caps.
        int64_t need = lo <= 0 || m >= kNoCap ? 0
                       : known(kAS)           ? lo - capped_product(s.sub_subgraphs, m, kNoCap)
                                              : (lo + m) / (m + 1);  // ceil(lo / (1 + m))
        rule(need, most - (known(kAS) ? s.sub_subgraphs : 0));
      }
      rule(0, w);
      if (known(kAN) && known(kAS) && m < kNoCap)
        rule(s.sub_edges - capped_product(s.sub_subgraphs, m, kNoCap), kNoCap);
      // No wider than its subgraphs allow at X's least share of calls that make calls.
      if (known(kAS) && cap.share > 0)
        rule(0, static_cast<int64_t>(
                    std::floor(static_cast<double>(s.sub_subgraphs) / cap.share + 1e-9)));
      break;
    case kAS:  // num_subgraphs
      if (!known(kAN) && (most < kNoCap || lo > 0)) {
        int64_t need = 0;
        if (known(kAC) && lo > s.sub_width && m < kNoCap)
          need = m > 0 ? (lo - s.sub_width + m - 1) / m : kNoCap;
        rule(need, most - (known(kAC) ? s.sub_width : 1));
      }
      // Before the width: enough subgraphs that a width within X's cap reaches the line's
      // calls (num_edges, or the least it must take), else that width would pass the cap.
      if (!known(kAC) && w < kNoCap && m < kNoCap) {
        const int64_t calls = known(kAN) ? s.sub_edges : lo;
        if (calls > w) rule(m > 0 ? (calls - w + m - 1) / m : kNoCap, kNoCap);
      }
      rule(0, width);
      // At least X's least share of its calls make calls (in TrainTicket, every call
      // `ts-basic-service` makes does: a call under it left a leaf is one no real graph has).
      if (known(kAC) && cap.share > 0)
        rule(static_cast<int64_t>(std::ceil(cap.share * static_cast<double>(s.sub_width) - 1e-9)),
             kNoCap);
      if (known(kAN) && known(kAC) && m < kNoCap) {
        if (m > 0)
          rule((s.sub_edges - s.sub_width + m - 1) / m, kNoCap);
        else
          rule(0, 0);  // nothing below its calls: no subgraphs
      }
      break;
    case kAR:  // remaining_depth: never deeper than in training
      if (cap.depth != SubtreeSize::kUnknown) rule(0, cap.depth);
      // Not 0 (no subgraphs) when the line's calls (num_edges, or the least it must take)
      // are more than its width (or X's cap on it) can make alone.
      if (m > 0 && m < kNoCap && (known(kAN) ? s.sub_edges : lo) > width) rule(1, kNoCap);
      break;
    default:
      break;
  }
  return out;
}

bool LayerConstraint::must_call(const State& s) const {
  const LayerSpec& sp = *spec_;
  if (!sp.callers || sp.callers->empty() || !known_names() || sp.require || spec_is_split(sp) ||
      !sp.num_subgraphs || !sp.num_current_edges)
    return false;
  int64_t have = 0;
  for (int i = 0; i < s.nedges; ++i) have += callable(s, i);
  const int64_t left = *sp.num_current_edges - s.nedges;  // this edge included
  return *sp.num_subgraphs - have >= left && left > 0;
}

int64_t LayerConstraint::max_length() const {
  const LayerSpec& sp = *spec_;
  constexpr int64_t kNum = 19;  // digits of any int64
  constexpr int64_t kName = static_cast<int64_t>(sizeof(EdgeRec::dest));
  auto total = [](const std::string_view* t, size_t count) {
    int64_t n = 0;
    for (size_t i = 0; i < count; ++i) n += static_cast<int64_t>(t[i].size());
    return n;
  };
  // "(" + five phrases with their values, 4 commas, 2 x " milliseconds", ")\n".
  const int64_t edge_line = total(kHeadT, 5) + 1 + 4 + 2 * 13 + 2 + 3 * kNum + kName + 4;
  // "<subgraph of edge_id K>" + ten "name:value" separated by "/" + "</subgraph>\n".
  const int64_t names = 3 * std::max<int64_t>(kName, static_cast<int64_t>(sp.service.size()));
  const int64_t sub_line =
      static_cast<int64_t>(tag::kSubgraph.size() + tag::kSubgraphEnd.size() + 2) + kNum +
      total(kAttrT, 10) + 9 + names + 7 * kNum;
  const bool split = spec_is_split(sp);
  const int64_t width =
      split ? 0 : sp.num_current_edges.value_or(static_cast<int64_t>(kMaxLayerEdges));
  const int64_t lines = split ? static_cast<int64_t>(kSplitFanout) : width;
  return 64 + width * edge_line + lines * sub_line;
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
        const std::vector<std::string>& v = name_list(s);
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
        const std::vector<std::string>& v = name_list(s);
        std::string_view p(s.name, s.nlen);
        if (name_char(ch) && static_cast<size_t>(s.nlen) + 1 < sizeof s.name) {
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

namespace {

// The options still open (a bit set over a choice table): all of them, or
// with a fixed order only the first.
uint16_t next_in_order(uint16_t left, bool fixed) {
  if (!fixed) return left;
  // The destination before the type, so that known types (LayerSpec::types)
  // can follow from it.
  for (Phrase p : {kPEdgeId, kPDest, kPType, kPStart, kPFinish})
    if (left >> p & 1) return static_cast<uint16_t>(1u << p);
  return 0;
}

}  // namespace

void LayerConstraint::open_phrase(State& s) const {
  expect_choice(s, Step::kPhraseHead, kTHead, next_in_order(s.phrases_left, spec_->fixed_order));
}

void LayerConstraint::open_child_attr(State& s) const {
  expect_choice(s, Step::kSubAttr, kTAttr, s.attrs_left);
}

namespace {

// The child line being written, for the feasibility arithmetic.
ChildLine child_line(const State& s) {
  auto known = [&](uint8_t a) { return (s.known >> a & 1) != 0; };
  ChildLine l;
  l.asked = s.attr == kAC   ? ChildLine::Attr::kWidth
            : s.attr == kAR ? ChildLine::Attr::kDepth
            : s.attr == kAN ? ChildLine::Attr::kEdges
                            : ChildLine::Attr::kSubgraphs;
  if (known(kAC)) l.width = s.sub_width;
  if (known(kAR)) l.depth = s.sub_depth;
  if (known(kAN)) l.edges = s.sub_edges;
  if (known(kAS)) l.subgraphs = s.sub_subgraphs;
  return l;
}

}  // namespace

void LayerConstraint::open_subs(State& s) const {
  const LayerSpec& sp = *spec_;
  bool split = spec_is_split(sp);
  bool can_line, can_close;
  if (split) {
    can_line = sp.num_subgraphs ? s.subs_done < *sp.num_subgraphs : s.width_left > 0;
    can_close = sp.num_subgraphs ? s.subs_done == *sp.num_subgraphs
                                 : s.width_left == 0 && s.edges_left == 0;
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
    can_line = depth_ok && s.last_k < last_id && s.edges_left >= 1;
    can_close = !s.need_deep && (sp.num_edges ? s.edges_left == 0 : true);
  }
  if (req_sub_pending(s)) can_close = false;
  expect_choice(s, Step::kSubsChoice, kTSubs,
                static_cast<uint8_t>((can_line ? 1 : 0) | (can_close ? 2 : 0)));
}

int64_t LayerConstraint::first_start() const { return spec_->start_communication_at.value_or(0); }

int64_t LayerConstraint::latest_finish() const {
  const LayerSpec& sp = *spec_;
  if (!sp.latency) return lim_.max_time_ms;
  return sp.root ? first_start() + *sp.latency : *sp.latency;
}

ChildBudget LayerConstraint::child_budget(const State& s) const {
  const LayerSpec& sp = *spec_;
  const bool split = spec_is_split(sp);
  ChildBudget b;
  b.split = split;
  b.exact_edges = sp.num_edges.has_value();
  b.edges_left = s.edges_left;
  b.width_left = s.width_left;
  b.deep_target = sp.remaining_depth ? *sp.remaining_depth - (split ? 0 : 1) : -1;
  b.need_deep = s.need_deep;
  b.more_lines_min = s.more_lines_min;
  b.more_lines_max = s.more_lines_max;
  b.max_depth = lim_.max_depth;
  return b;
}

// A value or literal of the unit was read completely: what comes next.
void LayerConstraint::complete(State& s) const {
  if (s.step >= Step::kSubsChoice) {
    complete_child_line(s);
  } else {
    complete_edges(s);
  }
}

// A phrase head of an edge was read ("destination is ", ...): what its
// value may be (the required call forces the layer's last edge).
void LayerConstraint::open_phrase_value(State& s) const {
  const LayerSpec& sp = *spec_;
  const int64_t sca0 = first_start();
  const bool root_latency = sp.root && sp.latency.has_value();
  const int64_t lat = latest_finish();
  s.phrases_left = static_cast<uint8_t>(s.phrases_left & ~(1u << s.choice));
  const bool first = s.nedges == 0;
  // The last edge meets the requirement when no earlier edge did.
  const bool force =
      req_pending(s) &&
      s.nedges == sp.num_current_edges.value_or(static_cast<int64_t>(kMaxLayerEdges)) - 1;
  if (force && s.choice == kPDest) {
    s.seen = -1;
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
      s.callers_only = must_call(s);
      // A caller the known layers offer here, or else the rest of the layer is free.
      if (s.callers_only && s.seen >= 0 &&
          spec_->layers->nodes[static_cast<size_t>(s.seen)].callers.empty())
        s.seen = -1;
      return;
    case kPType: {
      uint8_t known = 0;  // after the destination: the types its calls from this caller had
      if (spec_->types && !(s.phrases_left >> kPDest & 1))
        known = types_of(*spec_->types, sp.start_node, std::string_view(s.cur.dest, s.cur.dlen));
      expect_choice(s, Step::kType, kTType, known ? known : 0x1f);
      return;
    }
    case kPStart: {
      // After the finish: no earlier than the edge's longest call allows.
      const int64_t lo =
          s.has_finish ? std::max(sca0, s.cur.finish - std::min(duration_cap(s), s.cur.finish))
                       : sca0;
      IntSet set =
          first ? IntSet::range(sca0, sca0) : IntSet::range(lo, s.has_finish ? s.cur.finish : lat);
      expect_int(s, Step::kStart, set);
      return;
    }
    default: {
      const bool fixed = root_latency && first;
      // The first edge starts at sca0 even when its start comes later.
      const bool start_known = s.has_start || first;
      int64_t lo = s.has_start ? s.cur.start : sca0;
      int64_t hi = lat;
      if (!fixed && start_known) hi = std::min(lat, lo + std::min(duration_cap(s), lat));
      IntSet set = fixed ? IntSet::range(lat, lat) : IntSet::range(lo, hi);
      expect_int(s, Step::kFinish, set);
      return;
    }
  }
}

// The unit's opening and its edges: "<layer>\n<edges>\n(...)\n...</edges>\n".
void LayerConstraint::complete_edges(State& s) const {
  const LayerSpec& sp = *spec_;
  const int64_t sid0 = sp.start_edge_id.value_or(sp.root ? 0 : 1);
  switch (s.step) {
    case Step::kOpen:
      if (s.choice == 0) {
        expect_lit(s, Step::kEdgesOpen, "<edges>\n");
      } else {
        // A split: items cover all N edges and all num_edges.
        s.width_left = *sp.num_current_edges;
        s.edges_left = sp.num_edges ? *sp.num_edges : lim_.max_edges;
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
          if (s.nedges < static_cast<int>(kMaxLayerEdges)) alive |= 1;
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
        s.edges_left = (sp.num_edges ? *sp.num_edges : lim_.max_edges) - s.nedges;
        s.need_deep = sp.remaining_depth && *sp.remaining_depth >= 1;
        open_subs(s);
      }
      return;
    case Step::kPhraseHead:
      open_phrase_value(s);
      return;
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
        if (s.seen >= 0) {  // follow the known layers (name_list offered only their names)
          const LayerTrie::Node& n = spec_->layers->nodes[static_cast<size_t>(s.seen)];
          std::string_view d(s.name, s.nlen);
          auto it = std::lower_bound(n.names.begin(), n.names.end(), d);
          s.seen = it != n.names.end() && *it == d
                       ? n.next[static_cast<size_t>(it - n.names.begin())]
                       : -1;
        }
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
    default:
      return;
  }
}

// An attribute name of a child line was read: what its value may be
// (copied names, the edge's time bounds, or the feasible sizes).
void LayerConstraint::open_child_value(State& s) const {
  const LayerSpec& sp = *spec_;
  const bool split = spec_is_split(sp);
  const int64_t sca0 = first_start();
  const int64_t lat = latest_finish();
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
  const EdgeRec* e = split ? nullptr : &s.edges[static_cast<size_t>(s.sub_k - s.edges[0].id)];
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
      expect_int(
          s, Step::kSubVal,
          split ? IntSet::range(s.next_sid, s.next_sid) : IntSet::range(1, lim_.max_start_edge_id));
      return;
    case kASca: {
      int64_t lo = split ? sca0 : e->start;
      int64_t hi = split ? (s.subs_done == 0 ? sca0 : lat) : e->finish;
      if (s.known & (1u << kALat)) hi = std::min(hi, s.sub_latency);
      expect_int(s, Step::kSubVal, IntSet::range(lo, hi));
      return;
    }
    case kALat: {
      if (split) {
        int64_t l = sp.latency.value_or(lat);
        expect_int(s, Step::kSubVal, IntSet::range(l, l));
      } else {
        int64_t lo = (s.known & (1u << kASca)) ? s.sub_start : e->start;
        expect_int(s, Step::kSubVal, IntSet::range(lo, e->finish));
      }
      return;
    }
    default: {
      IntSet allowed =
          values_allowed(child_line(s), child_budget(s),
                         split ? std::min(s.width_left, *sp.num_current_edges - 1) : s.edges_left);
      if (!split) allowed = capped_sizes(s, allowed);
      if (!split && s.attr == kAC) allowed = drawn_width(s, allowed);
      expect_int(s, Step::kSubVal, allowed);
      return;
    }
  }
}

IntSet LayerConstraint::drawn_width(const State& s, const IntSet& allowed) const {
  const LayerSpec& sp = *spec_;
  if (!sp.shapes || sp.shapes->empty() || sp.require) return allowed;
  const EdgeRec* e = nullptr;
  for (int i = 0; i < s.nedges; ++i)
    if (s.edges[static_cast<size_t>(i)].id == s.sub_k) e = &s.edges[static_cast<size_t>(i)];
  const std::vector<CallShape>* shapes =
      e ? find_named(*sp.shapes, std::string_view(e->dest, e->dlen)) : nullptr;
  if (!shapes) return allowed;
  // The values an attribute of the line may take: its value when written,
  // else what the arithmetic and the caps would allow if it were asked now.
  auto may_take = [&](uint8_t attr, int64_t written) {
    if (s.known >> attr & 1) return IntSet::range(written, written);
    State q = s;
    q.attr = attr;
    return capped_sizes(q, values_allowed(child_line(q), child_budget(q), q.edges_left));
  };
  // The sizes its num_edges may take, and the depths its remaining_depth may
  // (a 4-call subtree one level deep is not one two levels deep).
  const IntSet below = may_take(kAN, s.sub_edges);
  const IntSet depth = may_take(kAR, s.sub_depth);
  const uint64_t pick = mix_seed(sp.draw_seed, static_cast<uint64_t>(s.sub_k));
  const std::optional<CallShape> c = draw_shape(
      *shapes, [&](int64_t b) { return below.distance(b); }, allowed, depth,
      static_cast<double>(pick >> 11) * 0x1.0p-53);
  return c ? IntSet::range(c->width, c->width) : allowed;
}

// The "<subgraph of edge_id k>attr:value/...</subgraph>\n" lines after the edges.
void LayerConstraint::complete_child_line(State& s) const {
  const LayerSpec& sp = *spec_;
  const bool split = spec_is_split(sp);
  auto budget = [&]() { return child_budget(s); };
  switch (s.step) {
    case Step::kSubsChoice:
      if (s.choice == 1) {
        s.ex = Ex::kEnd;
        return;
      }
      s.attrs_left = 0x3ff;
      s.known = 0;
      if (split) {
        s.more_lines_min = sp.num_subgraphs ? *sp.num_subgraphs - s.subs_done - 1 : 0;
        s.more_lines_max = sp.num_subgraphs ? s.more_lines_min : s.width_left - 1;
        s.sub_k = 0;
        open_child_attr(s);
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
        expect_int(s, Step::kSubK, callable_edges(s, lo, hi, after));
      }
      return;
    case Step::kSubK: {
      s.sub_k = s.val;
      int64_t last_id = s.edges[static_cast<size_t>(s.nedges - 1)].id;
      s.more_lines_min = sp.num_subgraphs ? *sp.num_subgraphs - s.subs_done - 1 : 0;
      s.more_lines_max = sp.num_subgraphs ? s.more_lines_min : last_id - s.sub_k;
      if (req_sub_pending(s)) {
        if (s.sub_k == s.edges[static_cast<size_t>(s.req_edge)].id)
          s.req_child = true;
        else
          s.more_lines_min =
              std::max<int64_t>(s.more_lines_min, 1);  // the required edge's line is still due
      }
      expect_lit(s, Step::kSubGt, ">");
      return;
    }
    case Step::kSubGt:
      open_child_attr(s);
      return;
    case Step::kSubAttr:
      open_child_value(s);
      return;
    case Step::kSubVal: {
      switch (s.attr) {
        case kASca:
          s.sub_start = s.val;
          break;
        case kALat:
          s.sub_latency = s.val;
          break;
        case kAC:
          s.sub_width = s.val;
          break;
        case kAR:
          s.sub_depth = s.val;
          break;
        case kAN:
          s.sub_edges = s.val;
          break;
        case kAS:
          s.sub_subgraphs = s.val;
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
        open_child_attr(s);
        return;
      }
      ChildBudget b = budget();
      if (s.sub_depth == b.deep_target) s.need_deep = false;
      s.edges_left -= s.sub_edges;
      s.width_left -= s.sub_width;
      ++s.subs_done;
      s.last_k = s.sub_k;
      s.next_sid += s.sub_width;
      open_subs(s);
      return;
    }
    default:
      return;
  }
}

}  // namespace tracelm
