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

// The integer `v` holds: throws std::out_of_range when v is not an integer
// (a float such as 1e96 would be undefined behaviour in get<int64_t>), or
// for json_count when it is negative. Readers turn it into InputError.
int64_t json_int(const nlohmann::json& v);
uint64_t json_count(const nlohmann::json& v);

}  // namespace tracelm
