// JSON text helpers shared by the readers and writers of outside formats
// (corpus, safetensors headers, OTLP/Jaeger).
#pragma once

#include <string>
#include <string_view>

namespace tracelm {

// True when s is valid UTF-8 (no overlongs, surrogates or code points
// above U+10FFFF): what JSON text must be.
bool is_valid_utf8(std::string_view s);

// Appends s as a JSON string literal ("..." with \" \\ \n \r \t and \u00XX
// escapes). s must be valid UTF-8 (the caller checks or replaces).
void append_json_string(std::string& out, std::string_view s);

// Deepest [ / { nesting outside strings; stops counting once past `limit`
// (so a hostile input costs one linear scan). Used to reject deep JSON before
// a recursive parser sees it.
int json_nesting_depth(std::string_view s, int limit);

}  // namespace tracelm
