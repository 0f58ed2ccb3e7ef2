// Jump-forward decoding's two parts (generate/jump_forward.h): the forced
// continuation of a unit automaton and the greedy tokenization of it.
#include <gtest/gtest.h>

#include "encode/recursive.h"
#include "generate/assembler.h"
#include "generate/jump_forward.h"
#include "generate/layer_constraint.h"
#include "ingest/ingest.h"
#include "sample/synthetic_raw.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace tracelm {
namespace {

LayerConstraint root_unit(int64_t edges, int64_t latency) {
  CorpusPriors priors;
  priors.services = {{"S_1", 1}};
  GenerateRequest r;
  r.service = "S_1";
  r.num_edges = edges;
  r.depth = edges > 1 ? 2 : 1;
  r.latency = latency;
  Rng rng(1);
  LayerSpec spec;
  std::string why;
  EXPECT_TRUE(LayerSpec::from_conditions(root_conditions(r, priors, rng), &spec, &why)) << why;
  return LayerConstraint(spec, ConstraintLimits{});
}

TEST(JumpForward, ForcedTextIsWhatEveryContinuationStartsWith) {
  LayerConstraint u = root_unit(1, 5);
  // A layer of 1 edge opens with fixed tags; the phrase order is free.
  EXPECT_EQ(forced_text(u), "<layer>\n<edges>\n(");
  EXPECT_TRUE(u.accepts("<layer>"));  // forced_text did not move the automaton
  ASSERT_TRUE(u.feed("<layer>\n<edges>\n(communication f"));
  // The root's one call lasts the whole latency: its finish is fixed too.
  EXPECT_EQ(forced_text(u), "inishes at 5 milliseconds,");
  ASSERT_TRUE(u.feed("inishes at 5 milliseconds,type is http,destination is A,edge_id is 0,"));
  // The one phrase left: its words are forced up to the number, and the
  // root's start is fixed by finish - start = latency (5 - 5 = 0).
  EXPECT_EQ(forced_text(u), "communication starts at 0 milliseconds)\n</edges>\n</layer>");
  ASSERT_TRUE(u.feed(forced_text(u)));
  EXPECT_TRUE(u.done());
  EXPECT_EQ(forced_text(u), "");  // nothing after done (the final newline is optional)
  EXPECT_EQ(forced_text(root_unit(1, 5), 4), "<lay");
}

// Forced text is tokenized as the tokenizer tokenizes training text, and
// only up to a point where what follows cannot change that.
TEST(JumpForward, ForcedTextIsTokenizedAsTrainingTextIs) {
  testing::TempDir tmp;
  testing::write_file(tmp.file("s.csv"), synthetic_raw_csv({}));
  std::string text;
  Rng rng(1);
  ingest({tmp.file("s.csv")}, {},
         {[&](CallGraph&& g) { text += encode_recursive(g, {}, rng); }, nullptr, nullptr});
  testing::write_file(tmp.file("t.txt"), text);
  TrainOptions to;
  to.vocab_size = 400;
  train_tokenizer(tmp.file("t.txt"), tmp.file("tok.model"), to);
  Tokenizer tok = Tokenizer::load(tmp.file("tok.model"));
  ForcedTokens ft(tok);
  auto text_of = [&](const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) s += tok.piece_texts()[static_cast<size_t>(id)].text;
    return s;
  };
  // Cut after the last newline: "(" may merge with the word that follows.
  std::vector<int32_t> ids = ft.tokenize("<layer>\n<edges>\n(");
  EXPECT_EQ(text_of(ids), "<layer>\n<edges>\n");
  EXPECT_EQ(ids[0], tok.piece_to_id("<layer>"));
  // Cut before the last space; the tokens are those of the text in a line.
  const std::string line = "(communication finishes at 5 milliseconds,type is http)";
  ids = ft.tokenize(" at 5 milliseconds,");
  EXPECT_EQ(text_of(ids), " at 5");
  std::vector<int> whole = tok.encode(line, false, false);
  std::string joined;
  for (int id : whole) joined += "|" + tok.piece_texts()[static_cast<size_t>(id)].text;
  std::string want;
  for (int32_t id : ids) want += "|" + tok.piece_texts()[static_cast<size_t>(id)].text;
  EXPECT_NE(joined.find(want + "|"), std::string::npos) << joined << " vs " << want;
  // No cut point: nothing to jump.
  EXPECT_TRUE(ft.tokenize("inishes").empty());
  EXPECT_TRUE(ft.tokenize("").empty());
}

}  // namespace
}  // namespace tracelm
