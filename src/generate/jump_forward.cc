#include "generate/jump_forward.h"

#include <algorithm>

#include "generate/constraint_sampler.h"

namespace tracelm {

std::string forced_text(const UnitConstraint& u, size_t max_bytes) {
  std::string out;
  std::unique_ptr<UnitConstraint> c;  // a copy, made only when a byte is forced
  const UnitConstraint* at = &u;
  while (out.size() < max_bytes && !at->done()) {
    std::bitset<256> next = at->next_bytes();
    if (next.count() != 1) break;
    size_t b = 0;
    while (!next[b]) ++b;
    char ch = static_cast<char>(b);
    if (!c) {
      c = u.clone();
      at = c.get();
    }
    if (!c->feed(std::string_view(&ch, 1))) break;
    out.push_back(ch);
  }
  return out;
}

std::vector<int32_t> ForcedTokens::tokenize(std::string_view s) const {
  // The longest prefix ending at a cut point: before a space, after a newline.
  size_t cut = 0;
  for (size_t i = 1; i <= s.size(); ++i)
    if (s[i - 1] == '\n' || (i < s.size() && s[i] == ' ')) cut = i;
  if (cut == 0) return {};
  // Encoded after a newline, so that a dummy prefix (a leading space the
  // tokenizer may add to every text) lands before the newline, not in s.
  std::string text = "\n";
  text.append(s.substr(0, cut));
  std::vector<int> ids = tok_.encode(text, false, false);
  const std::vector<PieceText>& pieces = tok_.piece_texts();
  std::string head;
  size_t k = 0;
  while (k < ids.size() && head != "\n" && head != " \n")
    head += pieces[static_cast<size_t>(ids[k++])].text;
  if (head != "\n" && head != " \n") return {};
  std::string rest;
  std::vector<int32_t> out;
  for (; k < ids.size(); ++k) {
    const PieceText& p = pieces[static_cast<size_t>(ids[k])];
    if (!is_writable_piece(p)) return {};
    rest += p.text;
    out.push_back(ids[k]);
  }
  if (rest != s.substr(0, cut)) return {};  // not the text itself: do not jump
  return out;
}

}  // namespace tracelm
