// The span half of `tracelm ingest` (OTLP, Jaeger, Zipkin, span tables) and
// `tracelm labels` (fault lists -> label windows). See docs/span-import.md.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

namespace tracelm::cli {

struct SpanIngestCli {
  std::string node = "service", columns, labels, unlabelled = "normal";
  std::vector<std::string> keep_labels;
  double skew_tolerance_ms = 1.0;
  size_t max_json_mb = 256;
};

// Registers the span options on the ingest subcommand.
std::shared_ptr<SpanIngestCli> add_span_ingest_options(CLI::App* ingest);

// True when the first input is a span file (not Alibaba CSV).
bool is_span_input(const std::vector<std::string>& inputs);

// Runs span ingestion with the shared ingest options; writes the corpus (and
// the validation corpus, the rejects file) like the Alibaba path.
void run_span_ingest(const SpanIngestCli& so, const std::vector<std::string>& inputs,
                     const std::string& output, const std::string& val_output, double val_fraction,
                     const std::string& rejects, const std::string& tmp_dir, size_t memory_mb,
                     int max_depth, bool quiet, bool json);

void add_labels(CLI::App& app);

}  // namespace tracelm::cli
