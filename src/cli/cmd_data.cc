// Data subcommands: ingest, validate, stats, export, sample.
#include <cmath>
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cmd_spans.h"
#include "cli/commands.h"
#include "core/validate.h"
#include "corpus/corpus.h"
#include "corpus/graph_source.h"
#include "export/alibaba_csv.h"
#include "export/graph_writer.h"
#include "export/jaeger.h"
#include "export/otlp.h"
#include "ingest/ingest.h"
#include "ingest/spans/labels.h"
#include "sample/synthetic_raw.h"
#include "stats/stats.h"
#include "stats/trained_stats.h"

namespace tracelm::cli {

namespace {

std::string val_path_for(const std::string& out) {
  std::string base = out;
  for (const char* ext : {".jsonl", ".json"}) {
    std::string e(ext);
    if (base.size() > e.size() && base.compare(base.size() - e.size(), e.size(), e) == 0) {
      base.resize(base.size() - e.size());
      break;
    }
  }
  return base + ".val.jsonl";
}

nlohmann::ordered_json edges_json(const CallGraph& g) {
  return nlohmann::ordered_json::parse(graph_to_json(g))["edges"];
}

}  // namespace

void add_ingest(CLI::App& app) {
  struct Opts {
    std::vector<std::string> inputs;
    std::string output, val_output, rejects, tmp_dir;
    double val_fraction = 0;
    bool strict = false, quiet = false, json = false;
    int max_depth = 15;
    size_t memory_mb = 256;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand(
      "ingest",
      "Alibaba CallGraph CSV (.csv, .csv.gz, .tar.gz; v2022 or v2021) or span files (OTLP/JSON, "
      "Jaeger JSON, Zipkin v2 JSON, span-table CSV; detected by content) -> corpus JSONL");
  c->add_option("inputs", o->inputs, "input files or globs")->required();
  c->add_option("-o,--output", o->output, "corpus to write (JSON Lines)")->required();
  c->add_option("--val-fraction", o->val_fraction,
                "fraction of traces (chosen by trace id) written to the validation corpus")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  c->add_option("--val-output", o->val_output, "validation corpus (default: OUTPUT.val.jsonl)");
  c->add_flag("--strict", o->strict,
              "also drop graphs where a child starts before its parent (clock skew)");
  c->add_option("--max-depth", o->max_depth, "drop graphs deeper than this")->capture_default_str();
  c->add_option("--rejects", o->rejects,
                "write every rejected row and trace, with its reason (JSONL)");
  c->add_option("--memory", o->memory_mb, "MiB of rows held in memory before spilling to disk")
      ->capture_default_str();
  c->add_option("--tmp-dir", o->tmp_dir, "where spill files go (default $TMPDIR or /tmp)");
  c->add_flag("-q,--quiet", o->quiet, "no progress or report on stderr");
  c->add_flag("--json", o->json, "print the report as JSON on stdout");
  auto so = add_span_ingest_options(c);  // span files: docs/span-import.md
  c->callback([o, so] {
    if (std::vector<std::string> in = expand_inputs(o->inputs); is_span_input(in))
      return run_span_ingest(*so, in, o->output, o->val_output, o->val_fraction, o->rejects,
                             o->tmp_dir, o->memory_mb, o->max_depth, o->quiet, o->json);
    IngestOptions opt;
    opt.build.strict = o->strict;
    opt.build.max_depth = o->max_depth;
    opt.memory_budget = o->memory_mb << 20;
    opt.tmp_dir = o->tmp_dir;
    opt.progress = !o->quiet;
    std::vector<std::string> inputs = expand_inputs(o->inputs);
    CorpusWriter train(o->output);
    std::unique_ptr<CorpusWriter> val;
    if (o->val_fraction > 0)
      val = std::make_unique<CorpusWriter>(o->val_output.empty() ? val_path_for(o->output)
                                                                 : o->val_output);
    std::unique_ptr<AtomicFile> rejects;
    if (!o->rejects.empty()) rejects = std::make_unique<AtomicFile>(o->rejects);
    IngestCallbacks cb;
    cb.on_graph = [&](CallGraph&& g) {
      if (val && is_validation(g.trace_id, o->val_fraction)) {
        val->write(g);
      } else {
        train.write(g);
      }
    };
    if (rejects) {
      cb.on_rejected_row = [&](const RejectedRow& r) {
        nlohmann::ordered_json j;
        j["kind"] = "row";
        j["file"] = r.file;
        j["line"] = r.line;
        j["reason"] = std::string(row_reject_code(r.reason));
        j["text"] = std::string(r.text.substr(0, 4096));
        rejects->write(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
      };
      cb.on_rejected_trace = [&](const BuiltTrace& t) {
        nlohmann::ordered_json j;
        j["kind"] = "trace";
        j["trace_id"] = t.graph.trace_id;
        j["reason"] = std::string(graph_reject_code(t.reject));
        j["detail"] = t.detail;
        j["service"] = t.graph.service;
        j["edges"] = edges_json(t.graph);
        rejects->write(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
      };
    }
    IngestStats st = ingest(inputs, opt, cb);
    train.close();
    if (val) val->close();
    if (rejects) rejects->close();
    if (!o->quiet) {
      std::fputs(st.to_text().c_str(), stderr);
      std::fprintf(stderr, "wrote %llu graphs to %s",
                   static_cast<unsigned long long>(train.count()), o->output.c_str());
      if (val)
        std::fprintf(stderr, ", %llu validation graphs to %s",
                     static_cast<unsigned long long>(val->count()),
                     (o->val_output.empty() ? val_path_for(o->output) : o->val_output).c_str());
      std::fprintf(stderr, " (%.1f s)\n", st.seconds);
    }
    if (o->json) std::printf("%s\n", st.to_json().c_str());
  });
}

void add_validate(CLI::App& app) {
  struct Opts {
    std::string input;
    bool json = false, strict = false;
    int show = 5;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand(
      "validate",
      "check every graph of a corpus (JSONL) or a CallGraph CSV against the rules; "
      "exit 0 only when all are valid");
  c->add_option("input", o->input, "corpus JSONL or CallGraph CSV")->required();
  c->add_flag("--json", o->json, "print the result as JSON");
  c->add_flag("--strict", o->strict,
              "count warnings (start_before_parent, clock skew in real data) as errors");
  c->add_option("--show", o->show, "list the violations of the first N invalid graphs")
      ->capture_default_str();
  c->callback([o] {
    ValidationSummary sum;
    std::vector<std::pair<std::string, std::vector<Violation>>> shown;
    for_each_graph(o->input, CsvMode::kAsIs, [&](CallGraph&& g) {
      std::vector<Violation> vs = validate(g);
      sum.add(vs);
      if (!is_valid(vs, o->strict) && static_cast<int>(shown.size()) < o->show)
        shown.emplace_back(g.trace_id.empty() ? fmt::format("graph #{}", sum.graphs) : g.trace_id,
                           std::move(vs));
    });
    if (o->json) {
      nlohmann::ordered_json j;
      j["graphs"] = sum.graphs;
      uint64_t valid = o->strict ? sum.strict_valid_graphs : sum.valid_graphs;
      j["strict"] = o->strict;
      j["valid"] = valid;
      j["invalid"] = sum.graphs - valid;
      j["with_warnings_only"] = sum.valid_graphs - sum.strict_valid_graphs;
      nlohmann::ordered_json rules = nlohmann::ordered_json::object();
      for (int r = 0; r < kNumRules; ++r)
        rules[std::string(rule_code(static_cast<Rule>(r)))] = {
            {"severity", is_warning(static_cast<Rule>(r)) && !o->strict ? "warning" : "error"},
            {"violations", sum.violations[r]},
            {"graphs", sum.graphs_with[r]}};
      j["rules"] = rules;
      nlohmann::ordered_json ex = nlohmann::ordered_json::array();
      for (auto& [name, vs] : shown) {
        nlohmann::ordered_json a = nlohmann::ordered_json::array();
        for (auto& v : vs)
          a.push_back({{"rule", std::string(rule_code(v.rule))},
                       {"rpc_id", v.rpc_id},
                       {"detail", v.detail}});
        ex.push_back({{"graph", name}, {"violations", a}});
      }
      j["examples"] = ex;
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      uint64_t valid = o->strict ? sum.strict_valid_graphs : sum.valid_graphs;
      std::printf(
          "graphs %llu  valid %llu  invalid %llu%s\n", static_cast<unsigned long long>(sum.graphs),
          static_cast<unsigned long long>(valid),
          static_cast<unsigned long long>(sum.graphs - valid), o->strict ? " (strict)" : "");
      for (int r = 0; r < kNumRules; ++r)
        if (sum.violations[r])
          std::printf("  %-7s %-22s %8llu violations in %llu graphs  (%s)\n",
                      is_warning(static_cast<Rule>(r)) && !o->strict ? "warning" : "error",
                      std::string(rule_code(static_cast<Rule>(r))).c_str(),
                      static_cast<unsigned long long>(sum.violations[r]),
                      static_cast<unsigned long long>(sum.graphs_with[r]),
                      std::string(rule_description(static_cast<Rule>(r))).c_str());
      for (auto& [name, vs] : shown) {
        std::printf("%s:\n", name.c_str());
        for (auto& v : vs)
          std::printf("  %s %s %s\n", std::string(rule_code(v.rule)).c_str(),
                      v.rpc_id.empty() ? "-" : v.rpc_id.c_str(), v.detail.c_str());
      }
    }
    uint64_t valid = o->strict ? sum.strict_valid_graphs : sum.valid_graphs;
    if (valid != sum.graphs || sum.graphs == 0) throw ExitCode{1};
  });
}

void add_stats(CLI::App& app) {
  struct Opts {
    std::string input;
    bool json = false;
    size_t top = 10;
    std::string trained;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand(
      "stats",
      "describe a corpus (or a CallGraph CSV, cleaned first): sizes, depths, types, "
      "fan-out, top services and calls, response times");
  c->add_option("input", o->input, "corpus JSONL or CallGraph CSV")->required();
  c->add_flag("--json", o->json, "print JSON");
  c->add_option("--top", o->top, "how many top services and calls")->capture_default_str();
  c->add_option("--trained-stats", o->trained,
                "also write the stats.json that `train` writes for this corpus to this file "
                "(e.g. to refresh an older model's: docs/generation.md)");
  c->callback([o] {
    CorpusStats st;
    std::vector<CallGraph> graphs;
    for_each_graph(o->input, CsvMode::kClean, [&](CallGraph&& g) {
      st.add(g);
      if (!o->trained.empty()) graphs.push_back(std::move(g));
    });
    if (!o->trained.empty()) TrainedStats::of(graphs).save(o->trained);
    if (o->json) {
      std::printf("%s\n", st.to_json(o->top).dump(2).c_str());
    } else {
      std::fputs(st.to_text(o->top).c_str(), stdout);
    }
  });
}

void add_export(CLI::App& app) {
  struct Opts {
    std::string input, output, format = "alibaba-csv", start;
    int64_t base_ms = 0;
    double rate = 10;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand("export", "write a corpus in another format");
  c->add_option("input", o->input, "corpus JSONL (or CallGraph CSV, cleaned first)")->required();
  c->add_option("--format", o->format,
                "output format: alibaba-csv, jsonl (corpus), otlp (OpenTelemetry OTLP JSON, "
                "one request), otlp-jsonl (one OTLP request per graph per line), jaeger "
                "(Jaeger UI JSON); span layout: docs/export.md")
      ->check(CLI::IsMember({"alibaba-csv", "jsonl", "otlp", "otlp-jsonl", "jaeger"}))
      ->capture_default_str();
  c->add_option("-o,--output", o->output, "output file ('-' for stdout)")->required();
  CLI::Option* base_opt = c->add_option(
      "--base-ms", o->base_ms,
      "epoch milliseconds: alibaba-csv, each trace's start (default 0); otlp, jaeger, the "
      "first trace's start when the corpus has no start times (default 1700000000000)");
  CLI::Option* start_opt =
      c->add_option("--start", o->start,
                    "otlp, jaeger: as --base-ms, as RFC 3339 (2023-11-14T22:13:20Z) or epoch "
                    "seconds");
  c->add_option("--rate", o->rate,
                "otlp, jaeger: traces per second for graphs without a start time of their own "
                "(trace k starts k/rate s after the first)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            try {
              double r = std::stod(v);
              if (r > 0 && std::isfinite(r)) return "";
            } catch (const std::exception&) {
            }
            return "expected a number of traces per second > 0, got '" + v + "'";
          },
          "RATE > 0"))
      ->capture_default_str();
  start_opt->excludes(base_opt);
  c->callback([o, base_opt, start_opt] {
    GraphWriterOptions wo;
    wo.rate = o->rate;
    if (base_opt->count()) wo.base_ms = o->base_ms;
    if (start_opt->count()) {
      int64_t ns = 0;
      if (!parse_time_ns(o->start, &ns) || ns < 0)
        throw CLI::ValidationError("--start",
                                   "expected RFC 3339 or epoch seconds, got '" + o->start + "'");
      wo.base_ms = ns / 1'000'000;
    }
    ExportCounts n = export_corpus(o->input, o->output, format_for_name(o->format), wo);
    if (n.refused)
      std::fprintf(stderr, "refused %llu invalid graphs (tracelm validate lists them)\n",
                   static_cast<unsigned long long>(n.refused));
    if (o->output != "-")
      std::fprintf(stderr, "wrote %llu graphs to %s\n", static_cast<unsigned long long>(n.written),
                   o->output.c_str());
  });
}

void add_sample(CLI::App& app) {
  auto o = std::make_shared<SyntheticRawOptions>();
  auto out = std::make_shared<std::string>();
  CLI::App* c = app.add_subcommand(
      "sample", "write a small SYNTHETIC raw CallGraph CSV (messy, like the published files)");
  c->add_option("-o,--output", *out, "CSV file to write")->required();
  c->add_option("--seed", o->seed, "random seed")->capture_default_str();
  c->add_option("--traces", o->traces, "number of traces")->capture_default_str();
  c->add_option("--services", o->services, "number of services")->capture_default_str();
  c->callback([o, out] {
    AtomicFile f(*out);
    f.write(synthetic_raw_csv(*o));
    f.close();
  });
}

}  // namespace tracelm::cli
