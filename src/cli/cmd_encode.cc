// `tracelm encode`: a corpus to training text in one of the three encodings.
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "corpus/corpus.h"
#include "corpus/graph_source.h"
#include "encode/condition_stats.h"
#include "encode/instruction.h"
#include "encode/recursive.h"
#include "encode/tabular.h"
#include "ingest/ingest.h"
#include "util/progress.h"

namespace tracelm::cli {

namespace {

struct EncodeOpts {
  std::string input, output, format = "recursive";
  uint64_t seed = 1;
  double p_drop = 0.1, p_drop_latency = 0.5, instruction_fraction = 0.05;
  int epochs = 1;
  bool no_shuffle = false, jsonl = false;
};

// Reads the corpus and writes its encoded text.
void run_encode(EncodeOpts* o) {
  std::vector<CallGraph> graphs;
  uint64_t skipped = 0;
  for_each_graph(o->input, CsvMode::kClean, [&](CallGraph&& g) {
    if (!text_representable(g)) {
      ++skipped;  // a name with , / : ( ) < > cannot be written in text
      return;
    }
    graphs.push_back(std::move(g));
  });
  if (skipped)
    std::fprintf(stderr,
                 "encode: skipped %llu graphs whose names hold characters the text formats "
                 "reserve (, / : ( ) < >)\n",
                 static_cast<unsigned long long>(skipped));
  ConditionStats stats;
  if (o->format == "instruction") {
    for (const CallGraph& g : graphs) stats.add(g);
    stats.finalize();
  }
  AtomicFile out(o->output);
  Rng rng(o->seed);
  std::string buf;
  uint64_t records = 0;
  auto emit = [&](const std::string& text, const std::string* prompt) {
    if (o->jsonl) {
      nlohmann::ordered_json j;
      if (prompt) {
        j["prompt"] = *prompt;
        j["completion"] = text.substr(prompt->size());
      }
      j["text"] = text;
      buf += j.dump();
      buf += '\n';
    } else {
      buf += text;
    }
    ++records;
    if (buf.size() > (1 << 20)) {
      out.write(buf);
      buf.clear();
    }
  };
  Progress progress("encode", graphs.size() * static_cast<uint64_t>(o->epochs), true, "graphs");
  uint64_t done = 0;
  for (int epoch = 0; epoch < o->epochs; ++epoch) {
    for (size_t i = 0; i < graphs.size(); ++i) {
      const CallGraph& g = graphs[i];
      if (o->format == "tabular") {
        emit(encode_tabular(g, {!o->no_shuffle, o->p_drop}, rng), nullptr);
      } else if (o->format == "recursive") {
        emit(encode_recursive(g, {!o->no_shuffle, o->p_drop, o->p_drop_latency}, rng), nullptr);
      } else {
        std::string key = g.trace_id.empty() ? std::to_string(i) : g.trace_id;
        if (!is_validation(key, o->instruction_fraction)) continue;
        InstructionOptions io;
        io.recursive = {!o->no_shuffle, o->p_drop, o->p_drop_latency};
        for (const InstructionSample& s : encode_instruction(g, &stats, io, rng)) {
          std::string text = s.question + s.answer;
          emit(text, &s.question);
        }
      }
      progress.update(++done, 0);
    }
  }
  out.write(buf);
  out.close();
  progress.finish();
  std::fprintf(stderr, "wrote %llu %s records from %zu graphs x %d epoch(s) to %s\n",
               static_cast<unsigned long long>(records), o->format.c_str(), graphs.size(),
               o->epochs, o->output.c_str());
}

}  // namespace

void add_encode(CLI::App& app) {
  auto o = std::make_shared<EncodeOpts>();
  CLI::App* c = app.add_subcommand(
      "encode",
      "write a corpus as training text: tabular, recursive or instruction (docs/encodings.md)");
  c->add_option("input", o->input, "corpus JSONL (or CallGraph CSV, cleaned first)")->required();
  c->add_option("--format", o->format, "encoding")
      ->check(CLI::IsMember({"tabular", "recursive", "instruction"}))
      ->capture_default_str();
  c->add_option("-o,--output", o->output, "text file to write ('-' for stdout)")->required();
  c->add_option("--seed", o->seed, "seed of the shuffles, drops and chunk sizes")
      ->capture_default_str();
  c->add_option("--p-drop", o->p_drop, "probability of dropping each droppable graph attribute")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  c->add_option("--p-drop-latency", o->p_drop_latency,
                "probability of dropping the root latency (recursive, instruction)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  c->add_option("--instruction-fraction", o->instruction_fraction,
                "fraction of graphs (chosen by trace id) turned into instruction samples")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  c->add_option("--epochs", o->epochs, "passes over the corpus, each with fresh shuffles")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  c->add_flag("--no-shuffle", o->no_shuffle, "canonical phrase and attribute order");
  c->add_flag("--jsonl", o->jsonl,
              "write JSON Lines {\"text\":...} (instruction: also \"prompt\" and \"completion\")");
  c->callback([o] { run_encode(o.get()); });
}

}  // namespace tracelm::cli
