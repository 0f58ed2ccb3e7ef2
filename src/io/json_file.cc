#include "io/json_file.h"

#include <fstream>
#include <sstream>

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

}  // namespace tracelm
