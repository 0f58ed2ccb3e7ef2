#include "corpus/graph_source.h"

#include <optional>
#include <string_view>

#include "corpus/corpus.h"
#include "io/byte_source.h"
#include "io/input_error.h"

namespace tracelm {

namespace {

// The format the file name says, or nullopt when it says none.
std::optional<GraphFileFormat> format_by_name(std::string_view path) {
  if (size_t slash = path.find_last_of('/'); slash != std::string_view::npos)
    path.remove_prefix(slash + 1);
  for (std::string_view z : {".gz", ".bz2", ".xz", ".zst"})
    if (path.ends_with(z)) {
      path.remove_suffix(z.size());
      break;
    }
  if (path.ends_with(".jsonl")) return GraphFileFormat::kCorpus;
  if (path.ends_with(".csv") || path.ends_with(".tar") || path.ends_with(".tgz"))
    return GraphFileFormat::kCsv;
  return std::nullopt;
}

// The first byte that is not white space in the file's streams (decompressed;
// every member of a tar archive in turn), or nullopt when there is none.
std::optional<char> first_content_byte(const std::string& path) {
  struct Found {};
  std::optional<char> first;
  try {
    for_each_stream(path, [&](ByteSource& src) {
      char buf[4096];
      while (size_t n = src.read(buf, sizeof buf)) {
        for (size_t i = 0; i < n; ++i) {
          if (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t') continue;
          first = buf[i];
          throw Found{};
        }
      }
    });
  } catch (const Found&) {
  }
  return first;
}

}  // namespace

GraphFileFormat graph_file_format(const std::string& path) {
  std::optional<char> first = first_content_byte(path);
  if (!first) throw InputError(path, 0, "no call graphs: the file is empty");
  if (auto f = format_by_name(path)) return *f;
  return *first == '{' ? GraphFileFormat::kCorpus : GraphFileFormat::kCsv;
}

IngestStats for_each_graph(const std::string& path, CsvMode mode,
                           const std::function<void(CallGraph&&)>& fn, bool progress) {
  IngestStats st;
  if (graph_file_format(path) == GraphFileFormat::kCorpus) {
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
