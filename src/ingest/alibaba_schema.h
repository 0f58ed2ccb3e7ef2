// The Alibaba CallGraph CSV schema: header mapping and row parsing.
//
// Contract:
//  - map_header() maps columns by name, never by position: v2022 CallGraph
//    (timestamp, traceid, service, rpc_id, um, rpctype, dm, rt, plus ignored
//    columns such as uminstanceid, interface, dminstanceid) in any order, and
//    v2021 MS_CallGraph (rpcid instead of rpc_id, no service column; a
//    leading unnamed index column is ignored). Names are case-insensitive.
//  - parse_row() applies preprocessing rule 1 of docs/preprocessing.md to one row and
//    says why a row is rejected; it never throws.
//  - Timestamps are integer ms (a decimal value is rounded); rt is a float in
//    ms: its absolute value (v2021 records callee-side rt negative) rounded to
//    the nearest integer ms.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/call_graph.h"
#include "util/json_text.h"  // is_valid_utf8

namespace tracelm {

struct ColumnMap {
  int timestamp = -1, traceid = -1, service = -1, rpc_id = -1;
  int um = -1, dm = -1, rpctype = -1, rt = -1;
  size_t num_columns = 0;  // rows must have exactly this many fields
  bool has_service() const { return service >= 0; }
};

// Maps a header line's fields. On failure returns nullopt and sets *error to
// what is missing ("missing columns: traceid, rt; found: a, b, c").
std::optional<ColumnMap> map_header(const std::vector<std::string_view>& fields,
                                    std::string* error);

// Why a raw row is dropped. Order = precedence when several apply.
enum class RowReject : uint8_t {
  kNone = 0,
  kLineTooLong,     // longer than the line limit (skipped unparsed)
  kMalformed,       // bad quoting or a field count different from the header's
  kFieldTooLong,    // an id field longer than 255 bytes
  kBadEncoding,     // an id field that is not valid UTF-8
  kMissingTraceId,  // empty trace id
  kBadType,         // rpctype not http/rpc/mc/db/mq (UNKNOWN, userDefined, ...)
  kMissingCaller,   // um missing (UNKNOWN, UNAVAILABLE, empty, (?))
  kMissingCallee,   // dm missing
  kMissingRt,       // rt empty or a missing marker
  kBadRt,           // rt not a finite number
  kBadTimestamp,    // timestamp not a number
  kBadRpcId,        // rpc_id not dot-decimal
  kCount
};
inline constexpr int kNumRowRejects = static_cast<int>(RowReject::kCount);
std::string_view row_reject_code(RowReject r);  // "bad_type", ...

// One accepted row; views point into the line being parsed.
struct RawRow {
  std::string_view traceid, service, rpc_id, um, dm;
  CallType type = CallType::kHttp;
  int64_t timestamp_ms = 0;
  int64_t rt_ms = 0;
};

// Parses one row's fields. When `keep_missing` is true (validation mode),
// rows with a missing um/dm or an unknown type are kept (the graph will show
// the violation); only unparseable rows are rejected.

RowReject parse_row(const std::vector<std::string_view>& fields, const ColumnMap& cols,
                    bool keep_missing, RawRow* row);

}  // namespace tracelm
