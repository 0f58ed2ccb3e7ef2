// `tracelm tasks`: the downstream tasks of the paper (§4.5, appendix D.4;
// docs/tasks.md). make: task records from a corpus (src/tasks/task_data.h);
// score: external answers plus the frequency baseline (src/tasks/score.h);
// with libtorch also finetune (infilling: instruction tuning; prediction:
// the classifier head) and eval (models and the frequency baseline in one
// run; src/tasks/task_model.h).
#include <cstdio>
#include <fstream>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "corpus/corpus.h"
#include "corpus/graph_source.h"
#include "io/input_error.h"
#include "io/json_file.h"
#include "tasks/score.h"
#include "tasks/task_data.h"
#include "tasks/task_report.h"
#ifdef TRACELM_WITH_TORCH
#include "tasks/task_model.h"
#endif

namespace tracelm::cli {

namespace {

std::vector<CallGraph> load_graphs(const std::string& path) {
  std::vector<CallGraph> out;
  for_each_graph(path, CsvMode::kClean, [&](CallGraph&& g) { out.push_back(std::move(g)); });
  return out;
}

std::string rules_path(const std::string& out) {
  std::string base =
      out.size() > 6 && out.ends_with(".jsonl") ? out.substr(0, out.size() - 6) : out;
  return base + ".rules.json";
}

void write_json(const std::string& path, const nlohmann::json& j) {
  if (path == "-") {
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  AtomicFile f(path);
  f.write(j.dump(2) + "\n");
  f.close();
}

// Answers file: one JSON object per line with "answer" (infilling) or
// "label" (prediction), in the order of the test records.
void read_answers(const std::string& path, std::vector<std::string>* answers,
                  std::vector<int>* labels) {
  for_each_json_line(path, "expected a JSON object with \"answer\" or \"label\"",
                     [&](const nlohmann::json& j, uint64_t n) {
                       if (j.contains("answer") && j["answer"].is_string()) {
                         answers->push_back(j["answer"].get<std::string>());
                       } else if (j.contains("label") && j["label"].is_number_integer()) {
                         labels->push_back(j["label"].get<int>());
                       } else {
                         throw InputError(path, n,
                                          "expected \"answer\" (a string) or \"label\" (0 or 1)");
                       }
                     });
}

void print_results(const nlohmann::json& res, const std::string& json_path) {
  std::fputs(format_task_table(res).c_str(), json_path == "-" ? stderr : stdout);
  if (!json_path.empty()) write_json(json_path, res);
}

}  // namespace

namespace {

// One function per subcommand of `tracelm tasks`.
void add_tasks_make(CLI::App* t) {
  struct MakeOpts {
    std::string kind, corpus, out, rules_from, train_graphs;
    TaskOptions opt;
    bool no_balance = false;
  };
  auto m = std::make_shared<MakeOpts>();
  CLI::App* mk =
      t->add_subcommand("make", "task records from a corpus, split by graph (docs/tasks.md)");
  mk->add_option("kind", m->kind,
                 "infill-attribute, infill-call, predict-latency or predict-uncommon")
      ->required()
      ->check(CLI::IsMember(
          {"infill-attribute", "infill-call", "predict-latency", "predict-uncommon"}));
  mk->add_option("corpus", m->corpus, "call graphs (corpus .jsonl or Alibaba CSV)")->required();
  mk->add_option("-o,--output", m->out, "task records (.jsonl)")->required();
  mk->add_option("--seed", m->opt.seed, "split and record draws")->capture_default_str();
  mk->add_option("--train-fraction", m->opt.train_fraction,
                 "graphs in the train split (default: infilling 0.2, prediction 0.8)");
  mk->add_option("--val-fraction", m->opt.val_fraction,
                 "graphs in the val split (default: infilling 0, prediction 0.1)");
  mk->add_option("--max-train", m->opt.max_train,
                 "train records kept (0: all; default: the paper's 1,200 / 1,000 for "
                 "infilling, all for prediction)");
  mk->add_option("--max-test", m->opt.max_test,
                 "test records kept (0: all; default: 6,000 / 5,000 for infilling)");
  mk->add_flag("--no-balance", m->no_balance, "prediction: keep the classes as they come");
  mk->add_option("--percentile", m->opt.percentile, "predict-latency: high latency threshold")
      ->capture_default_str();
  mk->add_option("--rare-fraction", m->opt.rare_fraction,
                 "predict-uncommon: a call is rare in < this fraction of its service's graphs")
      ->capture_default_str();
  mk->add_option("--min-graphs", m->opt.min_graphs,
                 "predict-latency: train graphs a service needs for a threshold")
      ->capture_default_str();
  mk->add_option("--rules-from", m->rules_from,
                 "label with these rules (another task's .rules.json, e.g. the real one for a "
                 "synthetic training set); every graph goes to the train split");
  mk->add_option("--train-graphs", m->train_graphs,
                 "also write the train split's graphs to this corpus (e.g. to pre-train on, or "
                 "to request synthetic graphs like them)");
  mk->callback([m] {
    TaskKind kind = *parse_task_kind(m->kind);
    m->opt.balance = !m->no_balance;
    std::vector<CallGraph> corpus = load_graphs(m->corpus);
    std::optional<TaskRules> from;
    if (!m->rules_from.empty())
      from = TaskRules::from_json(read_json_file(m->rules_from), m->rules_from);
    TaskSet set = make_tasks(kind, corpus, m->opt, from ? &*from : nullptr);
    write_task_file(m->out, set.records);
    if (!is_infill(kind)) write_json(rules_path(m->out), set.rules.to_json());
    if (!m->train_graphs.empty()) {
      CorpusWriter w(m->train_graphs);
      for (size_t i : set.train_graphs) w.write(corpus[i]);
      w.close();
    }
    std::map<std::string, std::pair<int64_t, int64_t>> per;  // split -> (records, positives)
    for (const TaskRecord& r : set.records) {
      ++per[r.split].first;
      per[r.split].second += r.label == 1;
    }
    std::fprintf(stderr, "%s: %zu graphs -> train %zu, val %zu, test %zu graphs\n", m->kind.c_str(),
                 corpus.size(), set.train_graphs.size(), set.val_graphs.size(),
                 set.test_graphs.size());
    for (const char* s : {"train", "val", "test"})
      std::fprintf(stderr, "  %-5s %6lld records%s\n", s, static_cast<long long>(per[s].first),
                   is_infill(kind) ? "" : fmt::format(" ({} positive)", per[s].second).c_str());
    for (const auto& [why, n] : set.skipped)
      std::fprintf(stderr, "  skipped: %lld %s\n", static_cast<long long>(n), why.c_str());
    std::fprintf(stderr, "wrote %s%s\n", m->out.c_str(),
                 is_infill(kind) ? "" : (" and " + rules_path(m->out)).c_str());
  });
}

void add_tasks_score(CLI::App* t) {
  struct ScoreOpts {
    std::string tasks, answers, json;
    std::vector<std::string> prior;
    std::string name = "answers";
  };
  auto s = std::make_shared<ScoreOpts>();
  CLI::App* sc = t->add_subcommand(
      "score",
      "score answers to the test records (one {\"answer\":...} or {\"label\":...} per line, in "
      "order) next to the frequency baseline");
  sc->add_option("tasks", s->tasks, "task records (tracelm tasks make)")->required();
  sc->add_option("--answers", s->answers, "answers (.jsonl)");
  sc->add_option("--name", s->name, "name of the answers in the table")->capture_default_str();
  sc->add_option("--prior-corpus", s->prior,
                 "graphs the frequency baseline also counts (e.g. the model's training corpus)");
  sc->add_option("--json", s->json, "write the results as JSON ('-' for stdout)");
  sc->callback([s] {
    std::vector<TaskRecord> recs = read_task_file(s->tasks);
    std::vector<CallGraph> prior;
    for (const std::string& p : s->prior)
      for (CallGraph& g : load_graphs(p)) prior.push_back(std::move(g));
    std::vector<std::pair<std::string, TaskScore>> scores;
    if (!s->answers.empty()) {
      std::vector<std::string> answers;
      std::vector<int> labels;
      read_answers(s->answers, &answers, &labels);
      std::vector<const TaskRecord*> test = split_records(recs, "test");
      if (!labels.empty() && !answers.empty())
        throw InputError(s->answers, 0, "mixes answers and labels");
      size_t got = labels.empty() ? answers.size() : labels.size();
      if (got != test.size())
        throw InputError(s->answers, 0,
                         fmt::format("{} answers for {} test records", got, test.size()));
      scores.emplace_back(
          s->name, labels.empty() ? score_answers(test, answers) : score_labels(test, labels));
    }
    scores.emplace_back("frequency baseline", frequency_baseline_score(recs, prior));
    print_results(task_results(recs, scores), s->json);
  });
}

void add_tasks_report(CLI::App* t) {
  struct ReportOpts {
    std::vector<std::string> results;
    std::string out, title = "tracelm downstream tasks";
  };
  auto rp = std::make_shared<ReportOpts>();
  CLI::App* re = t->add_subcommand(
      "report", "an HTML page of task results (the --json files of tasks eval or score)");
  re->add_option("results", rp->results, "results .json files")->required();
  re->add_option("-o,--output", rp->out, "HTML file")->required();
  re->add_option("--title", rp->title, "page title")->capture_default_str();
  re->callback([rp] {
    std::vector<nlohmann::json> rs;
    for (const std::string& p : rp->results) {
      rs.push_back(read_json_file(p));
      if (!rs.back().is_object() || !rs.back().contains("task") || !rs.back().contains("results"))
        throw InputError(p, 0, "expected a task result (tracelm tasks eval --json)");
    }
    AtomicFile f(rp->out);
    f.write(task_report_page(rs, rp->title));
    f.close();
    std::fprintf(stderr, "wrote %s\n", rp->out.c_str());
  });
}

#ifdef TRACELM_WITH_TORCH
void add_tasks_finetune(CLI::App* t) {
  struct TuneOpts {
    std::string tasks, model, out;
    TaskTrainOptions opt;
    double time_budget_min = 0;
  };
  auto f = std::make_shared<TuneOpts>();
  CLI::App* ft = t->add_subcommand(
      "finetune",
      "infilling: instruction-tune a model on the train records (loss on the answer only); "
      "prediction: train the classifier head on the frozen model");
  ft->add_option("tasks", f->tasks, "task records (tracelm tasks make)")->required();
  ft->add_option("--model", f->model, "trained model directory (tracelm train -o)")->required();
  ft->add_option("-o,--output", f->out, "output directory")->required();
  ft->add_option("--lr", f->opt.lr, "peak learning rate")->capture_default_str();
  ft->add_option("--batch", f->opt.batch, "records per optimizer step")->capture_default_str();
  ft->add_option("--epochs", f->opt.epochs, "epochs")->capture_default_str();
  ft->add_option("--context", f->opt.context, "tokens per record (longer ones are cut)")
      ->capture_default_str();
  ft->add_option("--time-budget", f->time_budget_min,
                 "infilling: stop after this many minutes (and save; 0: none)");
  ft->add_flag("--full", f->opt.full, "infilling: full fine-tuning instead of LoRA");
  ft->add_flag("--from-scratch", f->opt.from_scratch,
               "random weights of the model's architecture (the no-pre-training baseline)");
  ft->add_option("--seed", f->opt.seed, "seed")->capture_default_str();
  ft->callback([f] {
    std::vector<TaskRecord> recs = read_task_file(f->tasks);
    if (recs.empty()) throw InputError(f->tasks, 0, "no task records");
    f->opt.time_budget_s = 60 * f->time_budget_min;
    std::string summary = is_infill(recs.front().task)
                              ? finetune_infill(recs, f->model, f->opt, f->out)
                              : train_classifier(recs, f->model, f->opt, f->out);
    std::fprintf(stderr, "%s\n", summary.c_str());
  });
}
#endif

#ifdef TRACELM_WITH_TORCH
void add_tasks_synthesize(CLI::App* t) {
  struct SynOpts {
    std::string model, like, rules, out;
    uint64_t seed = 1;
    int retries = 3;
  };
  auto y = std::make_shared<SynOpts>();
  CLI::App* sy = t->add_subcommand(
      "synthesize",
      "generate one graph like each given graph (service, edges, depth, latency, and its rare "
      "call per the rules): a synthetic training set for the prediction tasks");
  sy->add_option("--model", y->model, "trained model directory")->required();
  sy->add_option("--like", y->like, "the real training graphs (tasks make --train-graphs)")
      ->required();
  sy->add_option("--rules", y->rules, "the real task's rules (.rules.json)")->required();
  sy->add_option("-o,--output", y->out, "synthetic corpus (.jsonl)")->required();
  sy->add_option("--seed", y->seed, "seed")->capture_default_str();
  sy->add_option("--retries", y->retries, "new attempts for a failed or invalid graph")
      ->capture_default_str();
  sy->callback([y] {
    TaskRules rules = TaskRules::from_json(read_json_file(y->rules), y->rules);
    std::string summary;
    std::vector<CallGraph> gs =
        synthesize_like(y->model, load_graphs(y->like), rules, y->seed, y->retries, &summary);
    CorpusWriter w(y->out);
    for (const CallGraph& g : gs) w.write(g);
    w.close();
    std::fprintf(stderr, "%s -> %s\n", summary.c_str(), y->out.c_str());
  });
}
#endif

#ifdef TRACELM_WITH_TORCH
void add_tasks_eval(CLI::App* t) {
  struct EvalOpts {
    std::string tasks, json;
    std::vector<std::string> models;
    TaskEvalOptions opt;
  };
  auto e = std::make_shared<EvalOpts>();
  CLI::App* ev = t->add_subcommand(
      "eval",
      "score fine-tuned models (greedy answers) or classifier heads on the test records, with "
      "the frequency baseline, in one run");
  ev->add_option("tasks", e->tasks, "task records (tracelm tasks make)")->required();
  ev->add_option("--model", e->models,
                 "NAME=DIR: a directory from tracelm tasks finetune (repeatable)");
  ev->add_option("--prior-corpus", e->opt.prior_corpora,
                 "graphs the frequency baseline also counts (e.g. the model's training corpus)");
  ev->add_option("--max-new-tokens", e->opt.max_new_tokens, "infilling: tokens per answer")
      ->capture_default_str();
  ev->add_option("--limit", e->opt.limit, "score the first N test records (0: all)")
      ->capture_default_str();
  ev->add_option("--json", e->json, "write the results as JSON ('-' for stdout)");
  ev->add_option("--answers-dir", e->opt.answers_dir,
                 "write each model's answers to DIR/NAME.answers.jsonl (for tasks score)");
  ev->callback([e] {
    std::vector<TaskRecord> recs = read_task_file(e->tasks);
    for (const std::string& spec : e->models) {
      size_t eq = spec.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
        throw CLI::ValidationError("--model: expected NAME=DIR, got '" + spec + "'");
      e->opt.models.emplace_back(spec.substr(0, eq), spec.substr(eq + 1));
    }
    print_results(evaluate_tasks(recs, e->opt), e->json);
  });
}
#endif

}  // namespace

void add_tasks(CLI::App& app) {
  CLI::App* t = app.add_subcommand(
      "tasks", "downstream tasks: infilling missing data and predicting trace features");
  t->require_subcommand(1);
  add_tasks_make(t);
  add_tasks_score(t);
  add_tasks_report(t);
#ifdef TRACELM_WITH_TORCH
  add_tasks_finetune(t);
#endif
#ifdef TRACELM_WITH_TORCH
  add_tasks_synthesize(t);
#endif
#ifdef TRACELM_WITH_TORCH
  add_tasks_eval(t);
#endif
}

}  // namespace tracelm::cli
