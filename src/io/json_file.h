// Reading a small JSON document from a file (configs, adapter configs,
// statistics, checkpoint state). Throws InputError naming the file when it
// cannot be opened or is not valid JSON (with the byte offset), or when it
// is nested deeper than 64 levels.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace tracelm {

nlohmann::json read_json_file(const std::string& path);

}  // namespace tracelm
