#include "export/graph_writer.h"

#include <stdexcept>

#include "core/validate.h"
#include "corpus/corpus.h"
#include "corpus/graph_source.h"
#include "export/alibaba_csv.h"
#include "export/jaeger.h"
#include "export/otlp.h"

namespace tracelm {

namespace {

struct Known {
  GraphFormat format;
  std::string_view name, extension;
};
constexpr Known kKnown[] = {
    {GraphFormat::kCorpusJsonl, "jsonl", ".jsonl"},
    {GraphFormat::kAlibabaCsv, "alibaba-csv", ".csv"},
    {GraphFormat::kOtlp, "otlp", ".otlp.json"},
    {GraphFormat::kOtlpJsonl, "otlp-jsonl", ".otlp.jsonl"},
    {GraphFormat::kJaeger, "jaeger", ".jaeger.json"},
};

}  // namespace

GraphFormat format_for_path(std::string_view path) {
  // The longest matching extension wins (".otlp.jsonl" before ".jsonl").
  const Known* best = nullptr;
  for (const Known& k : kKnown)
    if (path.ends_with(k.extension) && (!best || k.extension.size() > best->extension.size()))
      best = &k;
  if (!best)
    throw std::invalid_argument("output " + std::string(path) +
                                ": expected .jsonl, .csv, .otlp.json, .otlp.jsonl or .jaeger.json");
  return best->format;
}

GraphFormat format_for_name(std::string_view name) {
  for (const Known& k : kKnown)
    if (k.name == name) return k.format;
  throw std::invalid_argument("unknown graph format '" + std::string(name) +
                              "': expected jsonl, alibaba-csv, otlp, otlp-jsonl or jaeger");
}

std::string_view format_name(GraphFormat f) {
  for (const Known& k : kKnown)
    if (k.format == f) return k.name;
  return "?";
}

struct GraphWriter::Encoders {
  std::unique_ptr<OtlpJsonWriter> otlp;
  std::unique_ptr<JaegerJsonWriter> jaeger;
};

GraphWriter::GraphWriter(const std::string& path, GraphWriterOptions opt)
    : GraphWriter(path, format_for_path(path), opt) {}

GraphWriter::GraphWriter(const std::string& path, GraphFormat format, GraphWriterOptions opt)
    : file_(path), format_(format), enc_(std::make_unique<Encoders>()) {
  base_ms_ = opt.base_ms.value_or(format == GraphFormat::kAlibabaCsv ? 0 : kDefaultBaseEpochMs);
  TraceTiming timing{base_ms_, opt.rate};
  switch (format_) {
    case GraphFormat::kAlibabaCsv:
      buf_ = std::string(kAlibabaCsvHeader) + "\n";
      break;
    case GraphFormat::kOtlp:
    case GraphFormat::kOtlpJsonl:
      enc_->otlp = std::make_unique<OtlpJsonWriter>(timing, format_ == GraphFormat::kOtlp
                                                                ? OtlpJsonWriter::Mode::kOneRequest
                                                                : OtlpJsonWriter::Mode::kLines);
      break;
    case GraphFormat::kJaeger:
      enc_->jaeger = std::make_unique<JaegerJsonWriter>(timing);
      break;
    case GraphFormat::kCorpusJsonl:
      break;
  }
}

GraphWriter::~GraphWriter() = default;

bool GraphWriter::write(const CallGraph& g) {
  bool trace = format_ == GraphFormat::kOtlp || format_ == GraphFormat::kOtlpJsonl ||
               format_ == GraphFormat::kJaeger;
  if (trace && !is_valid(validate(g))) {
    ++refused_;
    return false;
  }
  switch (format_) {
    case GraphFormat::kAlibabaCsv:
      append_alibaba_rows(g, n_, base_ms_, buf_);
      break;
    case GraphFormat::kOtlp:
    case GraphFormat::kOtlpJsonl:
      enc_->otlp->add(g, buf_);
      break;
    case GraphFormat::kJaeger:
      enc_->jaeger->add(g, buf_);
      break;
    case GraphFormat::kCorpusJsonl:
      buf_ += graph_to_json(g);
      buf_ += '\n';
      break;
  }
  ++n_;
  flush_if_large();
  return true;
}

void GraphWriter::flush_if_large() {
  if (buf_.size() > (1 << 20)) {
    file_.write(buf_);
    buf_.clear();
  }
}

void GraphWriter::close() {
  if (format_ == GraphFormat::kOtlp || format_ == GraphFormat::kJaeger) {
    if (enc_->otlp) enc_->otlp->finish(buf_);
    if (enc_->jaeger) enc_->jaeger->finish(buf_);
    buf_ += '\n';
  }
  file_.write(buf_);
  buf_.clear();
  file_.close();
}

uint64_t write_graphs(const std::string& path, const std::vector<CallGraph>& graphs) {
  GraphWriter w(path);
  for (const CallGraph& g : graphs) w.write(g);
  w.close();
  return w.count();
}

ExportCounts export_corpus(const std::string& input, const std::string& output, GraphFormat format,
                           const GraphWriterOptions& opt) {
  GraphWriter w(output, format, opt);
  for_each_graph(input, CsvMode::kClean, [&](CallGraph&& g) { w.write(g); });
  w.close();
  return {w.count(), w.refused()};
}

}  // namespace tracelm
