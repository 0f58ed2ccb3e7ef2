// RpcId: the dot-decimal identifier of one call in a call graph.
//
// Contract:
//  - "0" is the root call (from USER); "0.1", "0.2" are calls made by the
//    callee of "0"; the parent of "a.b.c" is "a.b".
//  - An RpcId is always canonical: non-empty components of decimal digits,
//    no leading zeros (except the single digit "0"), each at most 18 digits (real MQ calls have
//    10-digit components), at most kMaxComponents components. parse() rejects anything else.
//  - Ordering (operator<) is numeric component by component, a prefix first:
//    sorting the edges of a graph by RpcId gives pre-order (depth first).
//  - A value type; cheap to copy (short ids fit in std::string's inline buffer).
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tracelm {

class RpcId {
 public:
  static constexpr int kMaxComponents = 64;

  RpcId() : text_("0") {}
  // Returns nullopt when `text` is not a canonical dot-decimal id.
  static std::optional<RpcId> parse(std::string_view text);
  // True when `text` is canonical (parse() would succeed); does not allocate.
  static bool valid(std::string_view text);
  static RpcId root() { return RpcId(); }

  const std::string& str() const { return text_; }
  // Number of components: "0" -> 1, "0.1.2" -> 3.
  int depth() const;
  bool is_top_level() const { return text_.find('.') == std::string::npos; }
  // Parent id; nullopt for a top-level id.
  std::optional<RpcId> parent() const;
  // Last component: "0.1.12" -> 12.
  uint64_t last() const;
  // Child id: "0.1".child(3) -> "0.1.3".
  RpcId child(uint64_t k) const;

  bool operator==(const RpcId& o) const { return text_ == o.text_; }
  std::strong_ordering operator<=>(const RpcId& o) const;

 private:
  explicit RpcId(std::string text) : text_(std::move(text)) {}
  std::string text_;
};

}  // namespace tracelm
