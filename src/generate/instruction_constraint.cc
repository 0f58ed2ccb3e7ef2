#include "generate/instruction_constraint.h"

#include <algorithm>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "encode/unit_format.h"

namespace tracelm {

using Phase = InstructionConstraint::Phase;
using AnswerState = InstructionConstraint::AnswerState;

InstructionConstraint::InstructionConstraint(const LayerSpec& spec, const ConstraintLimits& limits)
    : in_(spec, limits) {
  w_.in = in_.state();
  split_ = spec.num_current_edges && is_split(*spec.num_current_edges);
  w_.rd = spec.remaining_depth.value_or(-1);
  // The scratchpad states num_edges; a layer's list needs num_subgraphs.
  if (!spec.num_edges || (!split_ && !spec.num_subgraphs)) w_.ph = Phase::kDead;
}

int64_t InstructionConstraint::max_length() const {
  // The unit, then the scratchpad: the three counting lines and the list
  // (< 1 KB), and per child block its four lines and "now, ..." (< 512 B each).
  const int64_t children = static_cast<int64_t>(kMaxLayerEdges);
  return in_.max_length() + 1024 + children * 512;
}

bool InstructionConstraint::done() const { return in_.done_state(w_.in); }

bool InstructionConstraint::feed(std::string_view text) {
  AnswerState w = w_;
  for (char ch : text)
    if (!feed_byte(w, static_cast<unsigned char>(ch))) return false;
  w_ = w;
  return true;
}

bool InstructionConstraint::accepts(std::string_view text) const {
  if (text.empty()) return false;
  AnswerState w = w_;
  for (char ch : text)
    if (!feed_byte(w, static_cast<unsigned char>(ch))) return false;
  return true;
}

std::bitset<256> InstructionConstraint::next_bytes() const {
  // Masking is rare (the sampled token is checked first): try every byte.
  std::bitset<256> out;
  for (int b = 1; b < 256; ++b) {
    AnswerState w = w_;
    if (feed_byte(w, static_cast<unsigned char>(b))) out.set(static_cast<size_t>(b));
  }
  return out;
}

bool InstructionConstraint::inner(AnswerState& w, unsigned char ch) const {
  if (!in_.feed_byte(w.in, ch)) return false;
  std::memmove(w.tail, w.tail + 1, sizeof w.tail - 1);
  w.tail[sizeof w.tail - 1] = static_cast<char>(ch);
  return true;
}

bool InstructionConstraint::tail_is(const AnswerState& w, std::string_view s) const {
  return std::string_view(w.tail, sizeof w.tail).ends_with(s);
}

bool InstructionConstraint::probe(const AnswerState& w, std::string_view text) const {
  LayerConstraint::State s = w.in;
  for (char ch : text)
    if (!in_.feed_byte(s, static_cast<unsigned char>(ch))) return false;
  return true;
}

bool InstructionConstraint::probe_child_r(const AnswerState& w, int64_t r) const {
  return r >= 0 &&
         probe(w, fmt::format("<subgraph of edge_id {}>remaining_depth:{}/", w.ks[w.blk], r));
}

void InstructionConstraint::forced(AnswerState& w, std::string_view text, bool to_inner,
                                   Phase then) const {
  w.ph = Phase::kForced;
  size_t n = std::min(text.size(), sizeof w.buf);
  text.copy(w.buf, n);
  w.len = static_cast<uint16_t>(n);
  w.pos = 0;
  w.to_inner = to_inner;
  w.then = then;
  if (n == 0) enter(w, then);
}

void InstructionConstraint::enter(AnswerState& w, Phase ph) const {
  w.ph = ph;
  w.val = 0;
  w.nd = 0;
  if (ph == Phase::kList) {
    const LayerSpec& sp = in_.spec();
    int64_t s = *sp.num_subgraphs;
    const LayerConstraint::State& st = w.in;
    int64_t last = st.edges[static_cast<size_t>(st.nedges - 1)].id;
    w.lo = w.nks ? w.ks[w.nks - 1] + 1 : st.edges[0].id;
    w.hi = last - (s - w.nks - 1);
    // A required call's edge must be among the listed ones.
    if (sp.require && !sp.require->child_dest.empty() && st.req_edge >= 0) {
      int64_t rk = st.edges[static_cast<size_t>(st.req_edge)].id;
      bool listed = std::find(w.ks, w.ks + w.nks, rk) != w.ks + w.nks;
      if (!listed) {
        w.hi = std::min(w.hi, rk);
        if (w.nks == s - 1) w.lo = std::max(w.lo, rk);
      }
    }
    if (w.lo > w.hi) w.ph = Phase::kDead;
  } else if (ph == Phase::kSubStart) {
    forced(w, fmt::format("<subgraph of edge_id {}>remaining_depth:", w.ks[w.blk]), true,
           Phase::kChildR);
  } else if (ph == Phase::kNextBlock) {
    begin_block(w);
  } else if (ph == Phase::kChildR) {
    w.lo = w.rd_line ? w.rd - 1 : 0;
    w.hi = w.rd_line ? w.rd - 1 : w.rd - 2;
    if (w.lo > w.hi) w.ph = Phase::kDead;
  } else if (ph == Phase::kRdValue) {
    w.lo = 0;
    w.hi = -1;
    for (int64_t x = 1; x <= 99; ++x) {  // the root's remaining_depth: its child has x - 1
      if (probe_child_r(w, x - 1)) {
        if (w.hi < 0) w.lo = x;
        w.hi = x;
      } else if (w.hi >= 0) {
        break;
      }
    }
    if (w.hi < 0) w.ph = Phase::kDead;
  }
}

void InstructionConstraint::after_edges(AnswerState& w) const {
  const LayerSpec& sp = in_.spec();
  int64_t f = w.in.edges[0].id, n = w.in.nedges, l = f + n - 1, m = *sp.num_edges;
  std::string t = scratchpad::generated_edges(l, f) + "\n" + scratchpad::generated_out_of(n, m) +
                  "\n" + scratchpad::remaining_after_layer(m, n) + "\n";
  if (*sp.num_subgraphs == 0) {
    forced(w, t + std::string(scratchpad::kFinish) + "\n", false, Phase::kTail);
  } else {
    forced(w, t + "\n" + std::string(scratchpad::kGenerateSubgraphs), false, Phase::kList);
  }
}

void InstructionConstraint::begin_block(AnswerState& w) const {
  // The inner automaton's edge budget for the children (num_edges is known)
  // is the scratchpad's num_remaining_edges.
  std::string t =
      std::string(scratchpad::kConstraints) + "\n" + scratchpad::budget(w.in.edges_left) + "\n";
  if (split_) {
    forced(w, t, false, Phase::kSubLine);
    return;
  }
  int64_t k = w.ks[w.blk];
  const auto& e = w.in.edges[static_cast<size_t>(k - w.in.edges[0].id)];
  t += scratchpad::copy_start_node(k, std::string_view(e.dest, e.dlen)) + "\n";
  forced(w, t, false, Phase::kRdOrSub);
}

void InstructionConstraint::after_sub_line(AnswerState& w) const {
  // The inner automaton has taken the line's num_edges (n) off its budget.
  int64_t c = w.in.sub_edges, after = w.in.edges_left;
  std::string t = scratchpad::now_remaining(after + c, c) + "\n";
  if (!split_) {
    ++w.blk;
    if (w.blk < w.nks) {
      forced(w, t, false, Phase::kNextBlock);
    } else {
      forced(w, t + std::string(scratchpad::kFinish), false, Phase::kTail);
    }
  } else {
    forced(w, t, false, Phase::kSplitNext);
  }
}

bool InstructionConstraint::feed_byte(AnswerState& w, unsigned char ch) const {
  switch (w.ph) {
    case Phase::kBody: {
      // Training tokenizes the answer on its own, so SentencePiece's dummy
      // prefix puts a space before "<layer>": the model writes it first.
      if (!w.started) {
        w.started = true;
        if (ch == ' ') return true;
      }
      if (!inner(w, ch)) return false;
      if (tail_is(w, "<split>\n") && w.in.nedges == 0) {
        begin_block(w);
      } else if (tail_is(w, "</edges>\n")) {
        after_edges(w);
      }
      return true;
    }
    case Phase::kForced:
      if (w.pos >= w.len || static_cast<unsigned char>(w.buf[w.pos]) != ch) return false;
      if (w.to_inner && !inner(w, ch)) return false;
      if (++w.pos == w.len) enter(w, w.then);
      return true;
    case Phase::kList:
    case Phase::kRdValue: {
      if (ch >= '0' && ch <= '9') {
        if (w.nd > 0 && w.val == 0) return false;  // no leading zeros
        int64_t v = w.val * 10 + (ch - '0');
        if (w.nd >= 4 || !IntSet::range(w.lo, w.hi).has_prefix(v, w.nd + 1)) return false;
        w.val = v;
        ++w.nd;
        return true;
      }
      if (w.nd == 0 || w.val < w.lo || w.val > w.hi) return false;
      if (w.ph == Phase::kRdValue) {
        if (ch != ' ') return false;
        w.rd = w.val;
        forced(w, fmt::format("- 1 = {}\n", w.rd - 1), false, Phase::kSubStart);
        return true;
      }
      int64_t s = *in_.spec().num_subgraphs;
      w.ks[w.nks++] = w.val;
      if (w.nks < s) {
        if (ch != ',') return false;
        forced(w, "edge_id:", false, Phase::kList);
      } else {
        if (ch != '\n') return false;
        begin_block(w);
      }
      return true;
    }
    case Phase::kRdOrSub: {
      bool last = w.blk == w.nks - 1;
      if (ch == 'r') {
        if (w.rd < 0) {  // the root's depth was open: the model writes it
          forced(w, scratchpad::kDepthPrefix, false, Phase::kRdValue);
        } else {
          if (!probe_child_r(w, w.rd - 1)) return false;
          forced(w, scratchpad::depth(w.rd) + "\n", false, Phase::kSubStart);
        }
        w.rd_line = true;
        return feed_byte(w, ch);
      }
      if (ch == '<') {
        // The line is required for the last child when none went that deep.
        if (w.rd < 0 || (last && w.in.need_deep)) return false;
        bool some = false;
        for (int64_t r = 0; r < w.rd - 1 && !some; ++r) some = probe_child_r(w, r);
        if (!some) return false;
        w.rd_line = false;
        enter(w, Phase::kSubStart);
        return feed_byte(w, ch);
      }
      return false;
    }
    case Phase::kChildR: {
      if (ch >= '0' && ch <= '9') {
        int64_t v = w.val * 10 + (ch - '0');
        if ((w.nd > 0 && w.val == 0) || w.nd >= 3 ||
            !IntSet::range(w.lo, w.hi).has_prefix(v, w.nd + 1) || !inner(w, ch))
          return false;
        w.val = v;
        ++w.nd;
        return true;
      }
      if (ch != '/' || w.nd == 0 || w.val < w.lo || w.val > w.hi || !inner(w, ch)) return false;
      w.ph = Phase::kSubLine;
      return true;
    }
    case Phase::kSubLine:
      if (!inner(w, ch)) return false;
      if (tail_is(w, "</subgraph>\n")) after_sub_line(w);
      return true;
    case Phase::kSplitNext:
      if (ch == 'S') {
        if (!probe(w, "<subgraph of edge_id 0>")) return false;
        begin_block(w);
        return feed_byte(w, ch);
      }
      if (ch == 'f') {
        if (!probe(w, "</split>")) return false;
        forced(w, "finish generation", false, Phase::kTail);
        return feed_byte(w, ch);
      }
      return false;
    case Phase::kTail:
      return inner(w, ch);
    case Phase::kSubStart:   // transient: enter() moves on at once
    case Phase::kNextBlock:  // likewise
    case Phase::kDead:
      return false;
  }
  return false;
}

}  // namespace tracelm
