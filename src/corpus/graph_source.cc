#include "corpus/graph_source.h"

#include "corpus/corpus.h"

namespace tracelm {

IngestStats for_each_graph(const std::string& path, CsvMode mode,
                           const std::function<void(CallGraph&&)>& fn, bool progress) {
  IngestStats st;
  if (looks_like_corpus(path)) {
    st.graphs_kept = read_corpus(path, [&](CallGraph&& g) {
      st.edges_kept += g.edges.size();
      fn(std::move(g));
    });
    return st;
  }
  IngestOptions opt;
  opt.build.keep_all = mode == CsvMode::kAsIs;
  opt.build.max_depth = mode == CsvMode::kAsIs ? 1 << 30 : 15;
  opt.progress = progress;
  return ingest({path}, opt, {fn, nullptr, nullptr});
}

}  // namespace tracelm
