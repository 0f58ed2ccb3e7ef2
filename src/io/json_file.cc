#include "io/json_file.h"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "io/input_error.h"
#include "util/json_text.h"

namespace tracelm {

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path, 0, "cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  if (json_nesting_depth(text, 64) > 64) throw InputError(path, 0, "JSON nested too deeply");
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(path, 0, "not valid JSON (at byte " + std::to_string(e.byte) + ")");
  }
}

void for_each_json_line(const std::string& path, const std::string& expected,
                        const std::function<void(const nlohmann::json&, uint64_t)>& fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, 0, "cannot open");
  std::string line;
  uint64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw InputError(path, n, expected);
    fn(j, n);
  }
}

int64_t json_int(const nlohmann::json& v) {
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    throw std::out_of_range("integer too large: " + v.dump());
  if (!v.is_number_integer()) throw std::out_of_range("not an integer: " + v.dump());
  return v.get<int64_t>();
}

uint64_t json_count(const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  const int64_t n = json_int(v);
  if (n < 0) throw std::out_of_range("negative count: " + v.dump());
  return static_cast<uint64_t>(n);
}

}  // namespace tracelm
