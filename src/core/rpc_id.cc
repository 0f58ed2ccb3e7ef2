#include "core/rpc_id.h"

#include <charconv>

namespace tracelm {

std::optional<RpcId> RpcId::parse(std::string_view text) {
  if (!valid(text)) return std::nullopt;
  return RpcId(std::string(text));
}

bool RpcId::valid(std::string_view text) {
  if (text.empty() || text.size() > 16 * kMaxComponents) return false;
  int components = 0;
  size_t i = 0;
  while (true) {
    size_t j = i;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
    size_t len = j - i;
    if (len == 0 || len > 18) return false;
    if (len > 1 && text[i] == '0') return false;  // leading zero
    if (++components > kMaxComponents) return false;
    if (j == text.size()) break;
    if (text[j] != '.') return false;
    i = j + 1;
  }
  return true;
}

int RpcId::depth() const {
  int d = 1;
  for (char c : text_) d += (c == '.');
  return d;
}

std::optional<RpcId> RpcId::parent() const {
  size_t dot = text_.rfind('.');
  if (dot == std::string::npos) return std::nullopt;
  return RpcId(text_.substr(0, dot));
}

uint64_t RpcId::last() const {
  size_t dot = text_.rfind('.');
  size_t start = dot == std::string::npos ? 0 : dot + 1;
  uint64_t v = 0;
  std::from_chars(text_.data() + start, text_.data() + text_.size(), v);
  return v;
}

RpcId RpcId::child(uint64_t k) const { return RpcId(text_ + "." + std::to_string(k)); }

std::strong_ordering RpcId::operator<=>(const RpcId& o) const {
  const std::string& a = text_;
  const std::string& b = o.text_;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    size_t ie = a.find('.', i), je = b.find('.', j);
    if (ie == std::string::npos) ie = a.size();
    if (je == std::string::npos) je = b.size();
    // Canonical numbers: a shorter digit string is a smaller number.
    size_t la = ie - i, lb = je - j;
    if (la != lb) return la <=> lb;
    int c = a.compare(i, la, b, j, lb);
    if (c != 0) return c <=> 0;
    i = ie + 1;
    j = je + 1;
  }
  // One is a prefix of the other (or equal): the shorter (ancestor) first.
  bool a_done = i >= a.size(), b_done = j >= b.size();
  if (a_done && b_done) return std::strong_ordering::equal;
  return a_done ? std::strong_ordering::less : std::strong_ordering::greater;
}

}  // namespace tracelm
