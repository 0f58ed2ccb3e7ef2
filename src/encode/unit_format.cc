#include "encode/unit_format.h"

#include <fmt/format.h>

namespace tracelm::scratchpad {

std::string generated_edges(int64_t last, int64_t first) {
  return fmt::format(
      "num generated edges = the last edge id - the first edge id + 1 = {} - {} + 1 = {}", last,
      first, last - first + 1);
}

std::string generated_out_of(int64_t n, int64_t num_edges) {
  return fmt::format("{} edges generated out of num_edges:{}", n, num_edges);
}

std::string remaining_after_layer(int64_t num_edges, int64_t n) {
  return fmt::format("num_remaining_edges = num_edges:{} - generated:{} = {}", num_edges, n,
                     num_edges - n);
}

std::string budget(int64_t remaining) {
  return fmt::format("num_edges <= num_remaining_edges:{}", remaining);
}

std::string copy_start_node(int64_t k, std::string_view destination) {
  return fmt::format("copy start_node from edge {} destination: {}", k, destination);
}

std::string depth(int64_t rd) { return fmt::format("{}{} - 1 = {}", kDepthPrefix, rd, rd - 1); }

std::string now_remaining(int64_t before, int64_t child_edges) {
  return fmt::format("now, num_remaining_edges is {} - {} = {}", before, child_edges,
                     before - child_edges);
}

}  // namespace tracelm::scratchpad
