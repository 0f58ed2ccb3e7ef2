// `tracelm ingest` for span files, and `tracelm labels`.
#include "cli/cmd_spans.h"

#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "corpus/corpus.h"
#include "ingest/ingest.h"
#include "ingest/spans/labels.h"
#include "ingest/spans/span_ingest.h"
#include "io/input_error.h"
#include "io/json_file.h"

namespace tracelm::cli {

std::shared_ptr<SpanIngestCli> add_span_ingest_options(CLI::App* c) {
  auto o = std::make_shared<SpanIngestCli>();
  c->add_option("--node", o->node,
                "span files: a graph node is a 'service' or a 'service:operation' pair")
      ->check(CLI::IsMember({"service", "operation"}))
      ->capture_default_str();
  c->add_option("--columns", o->columns,
                "span tables: column mapping 'trace=...,span=...,parent=...,service=...|pod=...,"
                "operation=...,start=...,end=...|duration=...,start_unit=ns,duration_unit=us' "
                "or a preset ('nezha': TrainTicket / Online Boutique)");
  c->add_option("--labels", o->labels,
                "span files: CSV of labelled windows start,end,label[,service] (tracelm labels)");
  c->add_option("--keep-label", o->keep_labels, "keep only graphs with these labels");
  c->add_option("--unlabelled", o->unlabelled, "label of graphs outside every window")
      ->capture_default_str();
  c->add_option("--skew-tolerance-ms", o->skew_tolerance_ms,
                "span files: calls outside their parent by at most this are clamped, by more "
                "rejected")
      ->capture_default_str();
  c->add_option("--max-json-mb", o->max_json_mb,
                "largest JSON document read whole (one-document-per-line files are streamed)")
      ->capture_default_str();
  return o;
}

bool is_span_input(const std::vector<std::string>& inputs) {
  if (inputs.empty()) return false;
  SpanFormat f = sniff_file_format(inputs[0]);
  return f != SpanFormat::kUnknown && f != SpanFormat::kAlibabaCsv;
}

void run_span_ingest(const SpanIngestCli& so, const std::vector<std::string>& inputs,
                     const std::string& output, const std::string& val_output, double val_fraction,
                     const std::string& rejects_path, const std::string& tmp_dir, size_t memory_mb,
                     int max_depth, bool quiet, bool json) {
  SpanIngestOptions opt;
  opt.graph.node = so.node == "operation" ? NodeMode::kOperation : NodeMode::kService;
  opt.graph.max_depth = max_depth;
  opt.graph.skew_tolerance_ns = static_cast<int64_t>(so.skew_tolerance_ms * 1e6);
  if (!so.columns.empty()) {
    try {
      opt.columns = SpanColumns::parse(so.columns);
    } catch (const std::invalid_argument& e) {
      throw CLI::ValidationError("--columns", e.what());
    }
  }
  opt.max_document = so.max_json_mb << 20;
  opt.tmp_dir = tmp_dir;
  opt.memory_budget = memory_mb << 20;
  opt.progress = !quiet;
  if (!so.labels.empty()) opt.labels = read_label_csv(so.labels);
  if (!so.keep_labels.empty() && so.labels.empty())
    throw CLI::ValidationError("--keep-label", "needs --labels");
  opt.unlabelled = so.unlabelled;
  opt.keep_labels = so.keep_labels;
  CorpusWriter train(output);
  std::string vpath = val_output;
  if (vpath.empty()) {
    vpath = output;
    for (std::string e : {".jsonl", ".json"})
      if (vpath.size() > e.size() && vpath.compare(vpath.size() - e.size(), e.size(), e) == 0) {
        vpath.resize(vpath.size() - e.size());
        break;
      }
    vpath += ".val.jsonl";
  }
  std::unique_ptr<CorpusWriter> val;
  if (val_fraction > 0) val = std::make_unique<CorpusWriter>(vpath);
  std::unique_ptr<AtomicFile> rejects;
  if (!rejects_path.empty()) rejects = std::make_unique<AtomicFile>(rejects_path);
  SpanIngestCallbacks cb;
  cb.on_graph = [&](CallGraph&& g) {
    if (val && is_validation(g.trace_id, val_fraction)) {
      val->write(g);
    } else {
      train.write(g);
    }
  };
  if (rejects) {
    cb.on_rejected_row = [&](const std::string& file, uint64_t line, std::string_view reason,
                             std::string_view text) {
      nlohmann::ordered_json j;
      j["kind"] = "row";
      j["file"] = file;
      j["line"] = line;
      j["reason"] = std::string(reason);
      j["text"] = std::string(text.substr(0, 4096));
      rejects->write(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    };
    cb.on_rejected_trace = [&](const SpanGraph& t) {
      nlohmann::ordered_json j;
      j["kind"] = "trace";
      j["trace_id"] = t.graph.trace_id;
      j["reason"] = std::string(span_reject_code(t.reject));
      j["detail"] = t.detail;
      j["spans"] = t.spans;
      rejects->write(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    };
  }
  SpanIngestStats st = ingest_spans(inputs, opt, cb);
  train.close();
  if (val) val->close();
  if (rejects) rejects->close();
  if (!quiet) {
    std::fputs(st.to_text().c_str(), stderr);
    std::fprintf(stderr, "wrote %llu graphs to %s", static_cast<unsigned long long>(train.count()),
                 output.c_str());
    if (val)
      std::fprintf(stderr, ", %llu validation graphs to %s",
                   static_cast<unsigned long long>(val->count()), vpath.c_str());
    std::fprintf(stderr, " (%.1f s)\n", st.seconds);
  }
  if (json) std::printf("%s\n", st.to_json().c_str());
}

void add_labels(CLI::App& app) {
  struct Opts {
    std::vector<std::string> inputs;
    std::string output;
    int64_t window_s = 180;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand(
      "labels",
      "fault lists (Nezha JSON: inject_time, inject_pod, inject_type) -> label windows CSV "
      "start,end,label,service for `ingest --labels`");
  c->add_option("inputs", o->inputs, "fault list JSON files")->required();
  c->add_option("-o,--output", o->output, "label CSV to write ('-' for stdout)")->required();
  c->add_option("--window", o->window_s,
                "seconds after each injection labelled with its fault type")
      ->check(CLI::Range(int64_t{1}, int64_t{86400}))
      ->capture_default_str();
  c->callback([o] {
    std::vector<LabelWindow> all;
    for (const std::string& p : o->inputs) {
      auto w = fault_list_to_windows(read_json_file(p), o->window_s, p);
      all.insert(all.end(), w.begin(), w.end());
    }
    AtomicFile out(o->output);
    out.write(label_csv(all));
    out.close();
    if (o->output != "-")
      std::fprintf(stderr, "wrote %zu windows of %lld s to %s\n", all.size(),
                   static_cast<long long>(o->window_s), o->output.c_str());
  });
}

}  // namespace tracelm::cli
