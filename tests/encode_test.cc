// Encodings against the paper's reference text (../shared/data/tracellm-text)
// and round trips on the real graphs.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/validate.h"
#include "corpus/corpus.h"
#include "encode/tabular.h"
#include "encode/text_format.h"
#include "ingest/ingest.h"
#include "test_util.h"

namespace tracelm {
namespace {

const char* kTrainCsv = "data/alibaba-v2022/callgraphs-train.csv";
const char* kTabular = "data/tracellm-text/tabular-train.txt";

std::vector<CallGraph> real_graphs() {
  std::vector<CallGraph> out;
  ingest({testing::shared_path(kTrainCsv)}, {},
         {[&](CallGraph&& g) { out.push_back(std::move(g)); }, nullptr, nullptr});
  return out;
}

std::string content_key(CallGraph g) {
  g.trace_id.clear();
  return graph_to_json(g);
}

// Sorts the phrases of every edge line and the attributes of every attribute
// line, so that texts compare up to the per-sample shuffles.
std::string normalize(std::string_view text) {
  std::string out;
  LineScanner sc(text);
  auto sorted_join = [](std::string_view s, char sep) {
    std::vector<std::string> parts;
    size_t p = 0;
    while (true) {
      size_t q = s.find(sep, p);
      parts.emplace_back(s.substr(p, q == std::string_view::npos ? q : q - p));
      if (q == std::string_view::npos) break;
      p = q + 1;
    }
    std::sort(parts.begin(), parts.end());
    std::string r;
    for (size_t i = 0; i < parts.size(); ++i) r += (i ? std::string(1, sep) : "") + parts[i];
    return r;
  };
  while (!sc.done()) {
    std::string_view l = sc.next();
    if (l.size() > 1 && l.front() == '(' && l.back() == ')') {
      out += "(" + sorted_join(l.substr(1, l.size() - 2), ',') + ")";
    } else if (l.substr(0, kGenerateGraph.size()) == kGenerateGraph) {
      out += std::string(kGenerateGraph) + sorted_join(l.substr(kGenerateGraph.size()), '/');
    } else {
      out += l;
    }
    out += '\n';
  }
  return out;
}

TEST(TextFormat, EdgesAndAttributesRoundTrip) {
  EdgeText e;
  e.source = "USER";
  e.edge_id = "0.1";
  e.destination = "MS_1";
  e.type = "rpc";
  e.start_ms = 3;
  e.finish_ms = 7;
  Rng rng(1);
  for (int i = 0; i < 20; ++i) {
    std::string line = format_edge(e, &rng);
    EdgeText back;
    std::string err;
    ASSERT_TRUE(parse_edge(line, true, &back, &err)) << err << " in " << line;
    EXPECT_EQ(*back.source, "USER");
    EXPECT_EQ(back.edge_id, "0.1");
    EXPECT_EQ(back.start_ms, 3);
    EXPECT_EQ(back.finish_ms, 7);
    EXPECT_FALSE(parse_edge(line, false, &back, &err));  // source not allowed
  }
  std::string err;
  EdgeText back;
  for (const char* bad : {"", "()", "(edge_id is 1)", "(type is rpc,type is rpc)",
                          "(edge_id is 1,type is rpc,destination is A,communication starts at x "
                          "milliseconds,communication finishes at 1 milliseconds)",
                          "(what is this)"})
    EXPECT_FALSE(parse_edge(bad, false, &back, &err)) << bad;
  Attributes a;
  EXPECT_TRUE(parse_attributes("id:S_1/num_edges:3", &a, &err));
  EXPECT_EQ(*a.get_int("num_edges"), 3);
  EXPECT_FALSE(parse_attributes("id:S_1/id:S_2", &a, &err));
  EXPECT_FALSE(parse_attributes("novalue", &a, &err));
  // Dropping keeps "id" always.
  a.set("id", "S_1");
  a.set("latency", 5);
  a.set("depth", 2);
  for (int i = 0; i < 50; ++i) {
    Attributes b;
    ASSERT_TRUE(parse_attributes(format_attributes(a, &rng, 0.9, {"id"}), &b, &err));
    EXPECT_TRUE(b.has("id"));
  }
}

TEST(Tabular, EveryReferenceBlockParsesToARealValidGraphAndReencodes) {
  REQUIRE_SHARED(kTabular);
  std::vector<CallGraph> real = real_graphs();
  std::map<std::string, const CallGraph*> by_content;
  for (const CallGraph& g : real) by_content[content_key(g)] = &g;
  std::string text = testing::read_file(testing::shared_path(kTabular));
  std::vector<std::string_view> blocks = split_blocks(text);
  ASSERT_EQ(blocks.size(), 1014u);
  std::set<const CallGraph*> matched;
  Rng rng(7);
  for (std::string_view block : blocks) {
    TabularGraph t;
    ParseError err;
    ASSERT_TRUE(decode_tabular(block, &t, &err)) << err.to_string() << "\n" << block;
    EXPECT_TRUE(is_valid(validate(t.graph))) << block;
    auto it = by_content.find(content_key(t.graph));
    ASSERT_NE(it, by_content.end()) << "not a real graph:\n" << block;
    matched.insert(it->second);
    // Re-encode with the attributes this block kept; equal up to shuffles.
    std::string again = encode_tabular(t.graph, {true, 0.0}, rng);
    TabularGraph t2;
    ASSERT_TRUE(decode_tabular(again, &t2, &err));
    Attributes kept;
    for (auto& [k, v] : t2.attributes.items)
      if (t.attributes.has(k)) kept.set(k, v);
    std::string head = std::string(kGenerateGraph) + format_attributes(kept, nullptr, 0, {});
    std::string rebuilt = head + again.substr(again.find('\n'));
    EXPECT_EQ(normalize(rebuilt), normalize(block));
  }
  EXPECT_EQ(matched.size(), 1014u);
}

TEST(Tabular, RoundTripsAllRealGraphsWithAndWithoutShuffling) {
  REQUIRE_SHARED(kTrainCsv);
  Rng rng(3);
  for (const CallGraph& g : real_graphs()) {
    for (EncodeOptions opt : {EncodeOptions{false, 0.0}, EncodeOptions{true, 0.5}}) {
      TabularGraph t;
      ParseError err;
      std::string text = encode_tabular(g, opt, rng);
      ASSERT_TRUE(decode_tabular(text, &t, &err)) << err.to_string();
      EXPECT_TRUE(t.graph.same_content(g)) << text;
    }
  }
}

TEST(Tabular, DecoderReportsWhereTheTextIsWrong) {
  TabularGraph t;
  ParseError err;
  EXPECT_FALSE(decode_tabular("", &t, &err));
  EXPECT_FALSE(decode_tabular("[GENERATE GRAPH]latency:3\n<edges>\n</edges>\n", &t, &err));
  EXPECT_NE(err.what.find("no id"), std::string::npos);
  std::string text = "[GENERATE GRAPH]id:S_1\n<edges>\n(bad)\n</edges>\n";
  EXPECT_FALSE(decode_tabular(text, &t, &err));
  EXPECT_EQ(err.offset, text.find("(bad)"));
  EXPECT_FALSE(decode_tabular("[GENERATE GRAPH]id:S_1\n<edges>\n", &t, &err));
  EXPECT_NE(err.what.find("</edges>"), std::string::npos);
}

}  // namespace
}  // namespace tracelm
