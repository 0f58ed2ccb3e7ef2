// Shared pieces of the text encodings (docs/encodings.md): edge phrases,
// attribute lines ("name:value/name:value"), a bounded line scanner, and the
// structured parse error every decoder returns.
//
// Contract:
//  - Formatting is deterministic given the Rng (phrase and attribute order
//    are shuffled with it when asked).
//  - Parsing never throws, never recurses on input, and allocates O(input);
//    failures come back as a ParseError (what, and the byte offset).
//  - Numbers in text are integer milliseconds or counts, |v| <= 1e15.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/call_graph.h"
#include "util/rng.h"

namespace tracelm {

struct ParseError {
  std::string what;   // e.g. "expected '</edges>'"
  size_t offset = 0;  // byte offset in the parsed text
  std::string to_string() const { return "at byte " + std::to_string(offset) + ": " + what; }
};

// One edge as written in text. Tabular edges have a source and a dot-decimal
// edge_id; recursive edges have no source and an integer edge_id.
struct EdgeText {
  std::optional<std::string> source;
  std::string edge_id;
  std::string destination;
  std::string type;
  int64_t start_ms = 0, finish_ms = 0;
};

// The text fields of an edge: tabular (source, full dot-decimal id) or
// recursive (no source, the last id component).
EdgeText edge_text(const Edge& e, bool tabular);

// "(source is USER,edge_id is 0,...)" with the phrases in a shuffled order
// when `shuffle` (else the fixed order source, edge_id, type, destination,
// start, finish... see text_format.cc).
std::string format_edge(const EdgeText& e, Rng* shuffle);
// Parses one edge line (with its parentheses). `want_source`: whether the
// "source is" phrase is required (tabular) or forbidden (recursive).
bool parse_edge(std::string_view line, bool want_source, EdgeText* out, std::string* error);

// An ordered list of name:value attributes.
struct Attributes {
  std::vector<std::pair<std::string, std::string>> items;
  const std::string* get(std::string_view name) const;
  std::optional<int64_t> get_int(std::string_view name) const;
  void set(std::string name, std::string value);
  void set(std::string name, int64_t value) { set(std::move(name), std::to_string(value)); }
  bool has(std::string_view name) const { return get(name) != nullptr; }
};

// "a:1/b:2". When rng is given, the order is shuffled and each attribute not
// in `keep` is dropped with probability p_drop.
std::string format_attributes(const Attributes& a, Rng* rng, double p_drop,
                              const std::vector<std::string_view>& keep);
bool parse_attributes(std::string_view text, Attributes* out, std::string* error);

// Names (services, microservices) that the text formats can carry: not
// empty, at most 255 bytes, none of , / : ( ) < > or control characters, no
// space at either end. Decoders reject other names; `tracelm encode` skips
// graphs that have them.
bool is_plain_name(std::string_view s);

// Integer parsing for text fields: optional '-', digits, |v| <= 1e15.
bool parse_int(std::string_view s, int64_t* out);

// Line-by-line reading of a text with offsets.
class LineScanner {
 public:
  explicit LineScanner(std::string_view text) : text_(text) {}
  bool done() const { return pos_ >= text_.size(); }
  // The next line without its '\n' (and '\r'); does not advance.
  std::string_view peek() const;
  std::string_view next();
  size_t offset() const { return pos_; }        // offset of the next line
  size_t line_offset() const { return last_; }  // offset of the line last returned

 private:
  std::string_view text_;
  size_t pos_ = 0, last_ = 0;
};

}  // namespace tracelm
