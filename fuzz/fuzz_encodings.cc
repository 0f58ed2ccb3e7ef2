// libFuzzer target: arbitrary text -> the decoders of the three encodings
// (decode_tabular, decode_recursive, parse_instruction,
// decode_instruction_graph).
//
// Invariants (a violation traps):
//  - no decoder throws, crashes, hangs or over-allocates; a failure comes
//    with a message and an offset inside the text;
//  - a decoded graph without duplicate ids or missing parents re-encodes
//    (every encoding, shuffled) and decodes back to the same content.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "core/validate.h"
#include "encode/instruction.h"
#include "encode/recursive.h"
#include "encode/tabular.h"

#define FUZZ_CHECK(cond)                                                                          \
  do {                                                                                            \
    if (!(cond)) {                                                                                \
      std::fprintf(stderr, "fuzz_encodings: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, \
                   #cond);                                                                        \
      __builtin_trap();                                                                           \
    }                                                                                             \
  } while (0)

namespace {

bool round_trippable(const tracelm::CallGraph& g) {
  for (const tracelm::Violation& v : tracelm::validate(g))
    if (v.rule == tracelm::Rule::kDuplicateId || v.rule == tracelm::Rule::kParentMissing ||
        v.rule == tracelm::Rule::kEmptyGraph || v.rule == tracelm::Rule::kMissingRoot)
      return false;
  // Decoders only accept plain names, so decoded graphs are representable.
  FUZZ_CHECK(tracelm::text_representable(g));
  return g.edges.size() < 2000;
}

void check_round_trip(const tracelm::CallGraph& g) {
  if (!round_trippable(g)) return;
  tracelm::Rng rng(g.edges.size());
  tracelm::ParseError err;
  {
    tracelm::TabularGraph t;
    std::string text = tracelm::encode_tabular(g, {}, rng);
    FUZZ_CHECK(tracelm::decode_tabular(text, &t, &err));
    FUZZ_CHECK(t.graph.same_content(g));
  }
  {
    tracelm::CallGraph back;
    std::string text = tracelm::encode_recursive(g, {}, rng);
    FUZZ_CHECK(tracelm::decode_recursive(text, &back, &err));
    FUZZ_CHECK(back.same_content(g));
  }
  {
    tracelm::CallGraph back;
    std::string text;
    for (auto& s : tracelm::encode_instruction(g, nullptr, {}, rng)) text += s.question + s.answer;
    FUZZ_CHECK(tracelm::decode_instruction_graph(text, &back, &err));
    FUZZ_CHECK(back.same_content(g));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  tracelm::ParseError err;
  {
    tracelm::TabularGraph t;
    if (tracelm::decode_tabular(text, &t, &err))
      check_round_trip(t.graph);
    else
      FUZZ_CHECK(!err.what.empty() && err.offset <= size);
  }
  {
    tracelm::CallGraph g;
    if (tracelm::decode_recursive(text, &g, &err))
      check_round_trip(g);
    else
      FUZZ_CHECK(!err.what.empty() && err.offset <= size);
  }
  {
    tracelm::ParsedInstruction p;
    if (tracelm::parse_instruction(text, &p, &err)) {
      (void)tracelm::scratchpad_lines(p.unit, nullptr);
    } else {
      FUZZ_CHECK(!err.what.empty() && err.offset <= size);
    }
    tracelm::CallGraph g;
    if (tracelm::decode_instruction_graph(text, &g, &err)) check_round_trip(g);
  }
  {
    tracelm::LineScanner sc(text);
    tracelm::ParsedUnit u;
    if (!tracelm::parse_unit_body(sc, &u, &err)) FUZZ_CHECK(!err.what.empty());
  }
  return 0;
}
