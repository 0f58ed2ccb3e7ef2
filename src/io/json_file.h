// Reading a small JSON document from a file (configs, adapter configs,
// statistics, checkpoint state). Throws InputError naming the file when it
// cannot be opened or is not valid JSON (with the byte offset), or when it
// is nested deeper than 64 levels.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace tracelm {

nlohmann::json read_json_file(const std::string& path);

// Calls fn(object, line number) for each JSON object of a JSON Lines file,
// skipping blank lines. A line that is not a JSON object throws InputError
// naming the file and line, with `expected` as the message.
void for_each_json_line(const std::string& path, const std::string& expected,
                        const std::function<void(const nlohmann::json&, uint64_t)>& fn);

}  // namespace tracelm
