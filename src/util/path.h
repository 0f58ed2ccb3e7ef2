// Path helpers on '/'-separated strings (no filesystem access).
#pragma once

#include <string>

namespace tracelm {

// "a/b/c.txt" -> "a/b"; "c.txt" -> "."; "/c" -> "/".
inline std::string dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// "a/b/c.txt" -> "c.txt".
inline std::string base_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace tracelm
