// Text-encoding benchmark (not a test): for the tabular, recursive and
// instruction encodings of the real training graphs
// (../shared/data/alibaba-v2022/callgraphs-train.csv, or the synthetic sample
// when absent):
//   - encode and decode throughput (graphs/s, best of 3 passes);
//   - tokens per graph and per edge with the Llama-2 tokenizer
//     (../shared/models/llama2-tokenizer) and with a tokenizer trained here
//     on the three encodings (train_tokenizer defaults, vocab <= 2048).
// Usage: bench_encode
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "encode/condition_stats.h"
#include "encode/instruction.h"
#include "encode/recursive.h"
#include "encode/tabular.h"
#include "ingest/ingest.h"
#include "sample/synthetic_raw.h"
#include "tokenizer/tokenizer.h"

using namespace tracelm;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool exists(const std::string& p) { return access(p.c_str(), R_OK) == 0; }

}  // namespace

int main() {
  std::string shared = std::string(TRACELM_SOURCE_DIR) + "/../shared/";
  std::string csv = shared + "data/alibaba-v2022/callgraphs-train.csv";
  std::string source = "real callgraphs-train.csv";
  char tmpl[] = "/tmp/tracelm-bench-encode-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  if (!exists(csv)) {
    source = "synthetic sample (../shared absent)";
    csv = dir + "/sample.csv";
    std::ofstream(csv) << synthetic_raw_csv({});
  }
  std::vector<CallGraph> graphs;
  ingest({csv}, {}, {[&](CallGraph&& g) { graphs.push_back(std::move(g)); }, nullptr, nullptr});
  size_t edges = 0;
  for (auto& g : graphs) edges += g.edges.size();
  ConditionStats stats;
  for (auto& g : graphs) stats.add(g);
  stats.finalize();
  std::printf("graphs: %zu (%zu edges) from %s\n", graphs.size(), edges, source.c_str());

  const char* names[] = {"tabular", "recursive", "instruction"};
  std::vector<std::string> texts(3);
  std::vector<std::vector<std::string>> records(3);
  std::printf("%-12s %14s %14s %12s\n", "encoding", "encode g/s", "decode g/s", "bytes/graph");
  for (int f = 0; f < 3; ++f) {
    double best_enc = 1e30, best_dec = 1e30;
    for (int pass = 0; pass < 3; ++pass) {
      Rng rng(pass + 1);
      std::vector<std::string> out;
      out.reserve(graphs.size());
      double t = now();
      for (const CallGraph& g : graphs) {
        if (f == 0)
          out.push_back(encode_tabular(g, {}, rng));
        else if (f == 1)
          out.push_back(encode_recursive(g, {}, rng));
        else {
          std::string s;
          for (auto& x : encode_instruction(g, &stats, {}, rng)) s += x.question + x.answer;
          out.push_back(std::move(s));
        }
      }
      best_enc = std::min(best_enc, now() - t);
      t = now();
      size_t ok = 0;
      for (const std::string& s : out) {
        ParseError err;
        if (f == 0) {
          TabularGraph tg;
          ok += decode_tabular(s, &tg, &err);
        } else {
          CallGraph g;
          ok += f == 1 ? decode_recursive(s, &g, &err) : decode_instruction_graph(s, &g, &err);
        }
      }
      best_dec = std::min(best_dec, now() - t);
      if (ok != out.size()) std::fprintf(stderr, "decode failures: %zu\n", out.size() - ok);
      records[f] = std::move(out);
    }
    size_t bytes = 0;
    for (auto& s : records[f]) bytes += s.size();
    for (auto& s : records[f]) texts[f] += s;
    std::printf("%-12s %14.0f %14.0f %12.0f\n", names[f], graphs.size() / best_enc,
                graphs.size() / best_dec, double(bytes) / graphs.size());
  }

  // Tokenizers.
  std::vector<std::pair<std::string, std::string>> toks;
  std::string llama = shared + "models/llama2-tokenizer/tokenizer.model";
  if (exists(llama)) toks.emplace_back("llama-2 (32000)", llama);
  std::string all = dir + "/all.txt";
  {
    std::ofstream o(all);
    for (auto& t : texts) o << t;
  }
  std::string trained = dir + "/tok.model";
  double t0 = now();
  train_tokenizer(all, trained, {});
  double train_s = now() - t0;
  Tokenizer tt = Tokenizer::load(trained);
  toks.emplace_back("trained (" + std::to_string(tt.vocab_size()) + ")", trained);
  std::printf("trained tokenizer: %d pieces in %.1f s\n", tt.vocab_size(), train_s);
  std::printf("%-20s %-12s %14s %14s %14s\n", "tokenizer", "encoding", "tokens/graph",
              "tokens/edge", "ratio to llama");
  std::vector<double> llama_tpg(3, 0);
  for (size_t k = 0; k < toks.size(); ++k) {
    Tokenizer tok = Tokenizer::load(toks[k].second);
    for (int f = 0; f < 3; ++f) {
      size_t n = 0;
      for (const std::string& s : records[f]) n += tok.encode(s, true, true).size();
      double tpg = double(n) / graphs.size();
      if (k == 0 && toks[k].first.rfind("llama", 0) == 0) llama_tpg[f] = tpg;
      std::printf("%-20s %-12s %14.1f %14.2f %14s\n", toks[k].first.c_str(), names[f], tpg,
                  double(n) / edges,
                  llama_tpg[f] > 0 ? std::to_string(tpg / llama_tpg[f]).substr(0, 5).c_str() : "-");
    }
  }
  std::system(("rm -rf " + dir).c_str());
  return 0;
}
