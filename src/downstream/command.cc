#include "downstream/command.h"

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "corpus/corpus.h"
#include "downstream/report.h"
#include "io/input_error.h"

namespace tracelm::downstream {

std::vector<TrainingSource> load_training_sources(const std::vector<std::string>& specs) {
  std::vector<TrainingSource> out;
  out.push_back(parse_training_source("real"));
  std::set<std::string> names{"real"};
  for (const std::string& spec : specs) {
    TrainingSource s = parse_training_source(spec);
    if (s.name == "real") continue;
    if (!names.insert(s.name).second)
      throw InputError(spec, 0, "two training sets named \"" + s.name + "\"");
    s.graphs = load_labeled_graphs(s.path);
    if (s.graphs.empty()) throw InputError(s.path, 0, "no call graphs in this training set");
    out.push_back(std::move(s));
  }
  return out;
}

ExperimentResult run_downstream_command(const TaskFactory& make_task, const CommandFiles& files,
                                        const ExperimentOptions& opt) {
  std::vector<LabeledGraph> real = load_labeled_graphs(files.real);
  if (real.empty()) throw InputError(files.real, 0, "no call graphs in the real corpus");
  std::vector<TrainingSource> sources = load_training_sources(files.train);
  ExperimentResult r = run_experiment(make_task(real), real, sources, opt);
  if (!files.quiet) std::fputs(r.table().c_str(), stdout);
  if (!files.json.empty()) {
    std::string text =
        r.to_json().dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    if (files.json == "-") {
      std::fputs(text.c_str(), stdout);
    } else {
      AtomicFile f(files.json);
      f.write(text);
      f.close();
    }
  }
  if (!files.report.empty()) {
    AtomicFile f(files.report);
    f.write(downstream_html_page({r}, {}, false));  // tables even without gnuplot
    f.close();
  }
  return r;
}

PoolSummary write_real_training_pool(const std::string& real_path, const ExperimentOptions& opt,
                                     uint64_t seed, bool normal_only, const std::string& out_path) {
  std::vector<LabeledGraph> real = load_labeled_graphs(real_path);
  if (real.empty()) throw InputError(real_path, 0, "no call graphs in the real corpus");
  PoolSummary sum;
  sum.real_graphs = real.size();
  GraphRefs all = real_training_pool(real, opt, seed, false, &sum.apps);
  for (const App& app : sum.apps) {
    GraphRefs app_real = app_graphs(real, app);
    sum.app_graphs += app_real.size();
    sum.split_notes.push_back(
        describe_split(app_real, app_split(app, app_real, seed, opt), opt.split));
  }
  sum.pool_graphs = all.size();
  CorpusWriter out(out_path);
  for (const LabeledGraph* g : all) {
    if (normal_only && !is_normal_label(g->label)) {
      ++sum.not_normal;
      continue;
    }
    out.write(g->graph);
  }
  out.close();
  sum.written = out.count();
  return sum;
}

ExperimentResult read_experiment_result(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path, 0, "cannot open the downstream result");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw InputError(path, 0,
                     "not a JSON object (expected `tracelm downstream ... --json` output)");
  try {
    return ExperimentResult::from_json(j);
  } catch (const std::exception& e) {
    throw InputError(path, 0, e.what());
  }
}

}  // namespace tracelm::downstream
