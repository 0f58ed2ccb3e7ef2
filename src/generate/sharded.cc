#include "generate/sharded.h"

#include <stdexcept>

#include <nlohmann/json.hpp>

#include "corpus/corpus.h"

namespace tracelm {

std::pair<size_t, size_t> request_block(size_t n, int rank, int world) {
  size_t w = static_cast<size_t>(world), r = static_cast<size_t>(rank);
  size_t base = n / w, extra = n % w;
  size_t begin = r * base + std::min(r, extra);
  return {begin, begin + base + (r < extra ? 1 : 0)};
}

std::string encode_generated(const std::vector<GeneratedGraph>& gs) {
  std::string out;
  for (const GeneratedGraph& g : gs) {
    nlohmann::json j = {{"complete", g.complete}, {"layers", g.layers},
                        {"attempts", g.attempts}, {"tokens", g.tokens},
                        {"error", g.error},       {"graph", graph_to_json(g.graph)}};
    out += j.dump() + "\n";
  }
  return out;
}

std::vector<GeneratedGraph> decode_generated(const std::string& bytes) {
  std::vector<GeneratedGraph> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t nl = bytes.find('\n', pos);
    if (nl == std::string::npos) nl = bytes.size();
    nlohmann::json j = nlohmann::json::parse(bytes.substr(pos, nl - pos));
    GeneratedGraph g;
    g.complete = j.at("complete").get<bool>();
    g.layers = j.at("layers").get<int64_t>();
    g.attempts = j.at("attempts").get<int64_t>();
    g.tokens = j.at("tokens").get<int64_t>();
    g.error = j.at("error").get<std::string>();
    std::string err;
    std::optional<CallGraph> cg = parse_graph_json(j.at("graph").get<std::string>(), &err);
    if (!cg) throw std::runtime_error("generate: a rank sent a graph that does not parse: " + err);
    g.graph = std::move(*cg);
    out.push_back(std::move(g));
    pos = nl + 1;
  }
  return out;
}

GenerateStats sum_across_ranks(const GenerateStats& mine, DataParallelGroup* group) {
  if (!group) return mine;
  std::vector<torch::Tensor> t = {torch::tensor(
      {static_cast<double>(mine.sequences), static_cast<double>(mine.tokens),
       static_cast<double>(mine.prompt_tokens), static_cast<double>(mine.masked_steps),
       static_cast<double>(mine.forward_calls), mine.constraint_seconds},
      torch::kFloat64)};
  group->all_reduce_sum(t);
  auto v = [&](int64_t i) { return t[0][i].item<double>(); };
  GenerateStats out;
  out.sequences = static_cast<int64_t>(v(0));
  out.tokens = static_cast<int64_t>(v(1));
  out.prompt_tokens = static_cast<int64_t>(v(2));
  out.masked_steps = static_cast<int64_t>(v(3));
  out.forward_calls = static_cast<int64_t>(v(4));
  out.constraint_seconds = v(5);
  return out;
}

std::vector<GeneratedGraph> generate_across_ranks(
    const std::vector<GenerateRequest>& reqs, DataParallelGroup* group,
    const std::function<std::vector<GeneratedGraph>(const std::vector<GenerateRequest>&, uint64_t)>&
        generate) {
  if (!group) return generate(reqs, 0);
  auto [begin, end] = request_block(reqs.size(), group->rank(), group->world_size());
  std::vector<GenerateRequest> part(reqs.begin() + static_cast<long>(begin),
                                    reqs.begin() + static_cast<long>(end));
  std::vector<GeneratedGraph> mine = generate(part, begin);
  std::vector<std::string> all = group->all_gather_bytes(encode_generated(mine));
  std::vector<GeneratedGraph> out;
  for (int r = 0; r < group->world_size(); ++r) {
    if (r == group->rank()) {
      for (GeneratedGraph& g : mine) out.push_back(std::move(g));
      continue;
    }
    for (GeneratedGraph& g : decode_generated(all[static_cast<size_t>(r)]))
      out.push_back(std::move(g));
  }
  if (out.size() != reqs.size())
    throw std::runtime_error("generate: the ranks returned " + std::to_string(out.size()) +
                             " graphs for " + std::to_string(reqs.size()) + " requests");
  return out;
}

}  // namespace tracelm
