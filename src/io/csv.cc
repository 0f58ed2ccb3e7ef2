#include "io/csv.h"

#include <cstring>

namespace tracelm {

bool split_csv_line(std::string_view line, std::vector<std::string_view>& fields,
                    std::string& scratch) {
  fields.clear();
  const char* p = line.data();
  const char* end = p + line.size();
  if (std::memchr(p, '"', line.size()) == nullptr) {
    while (true) {
      const char* c = static_cast<const char*>(std::memchr(p, ',', static_cast<size_t>(end - p)));
      if (!c) {
        fields.emplace_back(p, static_cast<size_t>(end - p));
        return true;
      }
      fields.emplace_back(p, static_cast<size_t>(c - p));
      p = c + 1;
    }
  }
  // Slow path: quoted fields. Reserve so views into scratch stay valid.
  scratch.clear();
  scratch.reserve(line.size());
  while (true) {
    if (p < end && *p == '"') {
      size_t begin = scratch.size();
      ++p;
      while (true) {
        if (p >= end) return false;  // unterminated quote
        if (*p == '"') {
          if (p + 1 < end && p[1] == '"') {
            scratch.push_back('"');
            p += 2;
            continue;
          }
          ++p;
          break;
        }
        scratch.push_back(*p++);
      }
      fields.emplace_back(scratch.data() + begin, scratch.size() - begin);
      if (p == end) return true;
      if (*p != ',') return false;  // text after closing quote
      ++p;
    } else {
      const char* start = p;
      while (p < end && *p != ',') {
        if (*p == '"') return false;  // quote inside an unquoted field
        ++p;
      }
      fields.emplace_back(start, static_cast<size_t>(p - start));
      if (p == end) return true;
      ++p;
    }
  }
}

}  // namespace tracelm
