// Probabilistic baseline and realism metrics benchmark (not a test).
//
// Reads the real sample (../shared/data/alibaba-v2022/callgraphs-train.csv,
// or the synthetic raw sample when absent), splits it 90/10 by trace id as
// `tracelm ingest --val-fraction 0.1` does, fits the probabilistic model on the
// training part, then prints:
//   - fit time;
//   - generation throughput (graphs/s, best of 3 runs of --n graphs), and the
//     count of generated graphs with any violation (must be 0);
//   - generation throughput with num_edges/depth targets (rejection sampling),
//     prompts taken from the validation graphs;
//   - metric computation time: profiling the real set, and
//     RealismReport::compute for --n synthetic graphs (with memorization).
//
// Usage: bench_baseline [--n 10000] [--seed 1]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "baseline/probabilistic.h"
#include "core/validate.h"
#include "corpus/graph_source.h"
#include "eval/metrics.h"
#include "ingest/ingest.h"
#include "io/byte_source.h"
#include "sample/synthetic_raw.h"

using namespace tracelm;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool exists(const std::string& p) {
  std::FILE* f = std::fopen(p.c_str(), "rb");
  if (f) std::fclose(f);
  return f != nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = 10000;
  uint64_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--n")) n = std::strtoull(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--seed")) seed = std::strtoull(argv[i + 1], nullptr, 10);
  }
  std::string path =
      std::string(TRACELM_SOURCE_DIR) + "/../shared/data/alibaba-v2022/callgraphs-train.csv";
  std::string tmp;
  if (!exists(path)) {
    tmp = "/tmp/bench_baseline_sample.csv";
    SyntheticRawOptions so;
    so.traces = 2000;
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    std::string csv = synthetic_raw_csv(so);
    std::fwrite(csv.data(), 1, csv.size(), f);
    std::fclose(f);
    path = tmp;
    std::printf("real sample absent: using the SYNTHETIC raw sample (%d traces)\n", so.traces);
  }
  std::vector<CallGraph> train, val;
  for_each_graph(path, CsvMode::kClean, [&](CallGraph&& g) {
    (is_validation(g.trace_id, 0.1) ? val : train).push_back(std::move(g));
  });
  std::printf("data: %zu training graphs, %zu validation graphs (%s)\n", train.size(), val.size(),
              path.c_str());

  double t = now();
  ProbabilisticModel m = fit_probabilistic(train);
  std::printf("fit: %.3f s (%llu graphs, %zu microservices, max depth %d, max edges %lld)\n",
              now() - t, static_cast<unsigned long long>(m.fitted_graphs()), m.num_microservices(),
              m.max_depth(), static_cast<long long>(m.max_edges()));

  std::vector<CallGraph> syn;
  double best = 1e30;
  for (int run = 0; run < 3; ++run) {
    Rng rng(seed + run);
    std::vector<CallGraph> out;
    out.reserve(n);
    t = now();
    for (size_t i = 0; i < n; ++i) out.push_back(m.generate_graph(rng));
    best = std::min(best, now() - t);
    if (run == 0) syn = std::move(out);
  }
  size_t edges = 0, bad = 0;
  for (const CallGraph& g : syn) {
    edges += g.num_edges();
    bad += !validate(g).empty();
  }
  std::printf(
      "generate: %.0f graphs/s, %.0f edges/s (best of 3 x %zu graphs; %.2f edges/graph); "
      "graphs with any violation: %zu\n",
      static_cast<double>(n) / best, static_cast<double>(edges) / best, n,
      static_cast<double>(edges) / static_cast<double>(n), bad);

  if (!val.empty()) {
    Rng rng(seed);
    size_t matched = 0, attempts = 0, k = std::min<size_t>(n, 2000);
    t = now();
    for (size_t i = 0; i < k; ++i) {
      const CallGraph& p = val[i % val.size()];
      BaselineRequest r;
      r.service = p.service;
      r.num_edges = static_cast<int64_t>(p.num_edges());
      r.depth = p.depth();
      BaselineResult res = m.generate(rng, r);
      matched += res.matched;
      attempts += static_cast<size_t>(res.attempts);
    }
    double s = now() - t;
    std::printf(
        "generate with service/num_edges/depth targets: %.0f graphs/s, %.1f%% matched, "
        "%.1f draws per graph (cap 200)\n",
        static_cast<double>(k) / s, 100.0 * static_cast<double>(matched) / k,
        static_cast<double>(attempts) / k);
  }

  t = now();
  GraphSetProfile real;
  for (const CallGraph& g : val) real.add(g);
  double prof = now() - t;
  t = now();
  TrainingIndex idx;
  for (const CallGraph& g : train) idx.add(g);
  double index_s = now() - t;
  t = now();
  RealismReport rep = RealismReport::compute("probabilistic", real, syn, &idx);
  double comp = now() - t;
  t = now();
  std::string js = rep.to_json().dump();
  double dump_s = now() - t;
  std::printf(
      "metrics: profile real set %.3f s (%zu graphs); training index %.3f s; "
      "RealismReport::compute %.3f s for %zu synthetic graphs (%.0f graphs/s); "
      "to_json %.3f s (%zu bytes)\n",
      prof, val.size(), index_s, comp, syn.size(), static_cast<double>(syn.size()) / comp, dump_s,
      js.size());
  std::printf("  KL %.3f  HH@10 %.0f%%  EMD in %.3f out %.3f rt %.3f  memorized %.1f%%\n",
              rep.popular.kl, 100 * rep.heavy_hitters[0].accuracy, rep.emd[0].second.normalized,
              rep.emd[1].second.normalized, rep.emd[2].second.normalized,
              100 * rep.memorization->rate);
  if (!tmp.empty()) std::remove(tmp.c_str());
  return bad == 0 ? 0 : 1;
}
