// Splitting one CSV line into fields (RFC 4180 quoting within a line).
//
// Contract:
//  - split_csv_line() fills `fields` with views into `line` (fast path, no
//    quotes) or into `scratch` (quoted fields, "" unescaped). Views stay valid
//    until the next call with the same scratch.
//  - Returns false on malformed quoting (an unterminated quote, or text after
//    a closing quote). Quoted fields spanning lines are not supported.
//  - Never allocates more than O(line size).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tracelm {

bool split_csv_line(std::string_view line, std::vector<std::string_view>& fields,
                    std::string& scratch);

}  // namespace tracelm
