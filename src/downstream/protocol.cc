#include "downstream/protocol.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "core/validate.h"
#include "corpus/corpus.h"
#include "corpus/graph_source.h"
#include "io/byte_source.h"
#include "io/input_error.h"
#include "io/line_reader.h"
#include "util/rng.h"
#include "util/utc_time.h"

namespace tracelm::downstream {
namespace {

constexpr size_t kMaxLine = size_t{64} << 20;

uint64_t hash_name(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

std::string stem_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = base.find('.');
  return dot == std::string::npos || dot == 0 ? base : base.substr(0, dot);
}

// Columns padded to their widest cell (± counts one column), a rule under
// the header row.
std::string render_table(const std::vector<std::vector<std::string>>& cells) {
  auto width = [](const std::string& s) {
    size_t w = 0;
    for (unsigned char c : s) w += (c & 0xC0) != 0x80;
    return w;
  };
  std::vector<size_t> w;
  for (const auto& row : cells)
    for (size_t c = 0; c < row.size(); ++c) {
      if (w.size() <= c) w.push_back(0);
      w[c] = std::max(w[c], width(row[c]));
    }
  std::string out;
  for (size_t i = 0; i < cells.size(); ++i) {
    for (size_t c = 0; c < cells[i].size(); ++c) {
      out += cells[i][c] + std::string(w[c] - width(cells[i][c]), ' ');
      out += c + 1 < cells[i].size() ? "  " : "\n";
    }
    if (i == 0) {
      size_t total = 0;
      for (size_t c = 0; c < w.size(); ++c) total += w[c] + (c + 1 < w.size() ? 2 : 0);
      out += std::string(total, '-') + "\n";
    }
  }
  return out;
}

// SeedOutcome::by_kind of one run (TaskRun::kind set).
void score_by_kind(const Metric& primary, const TaskRun& run, SeedOutcome* o) {
  std::map<std::string, size_t> count;
  for (size_t i = 0; i < run.y.size(); ++i)
    if (run.y[i]) ++count[run.kind[i]];
  for (const auto& [kind, n] : count) {
    std::vector<double> score;
    std::vector<int> y;
    for (size_t i = 0; i < run.y.size(); ++i)
      if (!run.y[i] || run.kind[i] == kind) {
        score.push_back(run.score[i]);
        y.push_back(run.y[i]);
      }
    o->by_kind[kind] = primary.fn(score, y);
    o->positives_by_kind[kind] = n;
  }
}

}  // namespace

std::vector<LabeledGraph> load_labeled_graphs(const std::string& path) {
  std::vector<LabeledGraph> out;
  if (graph_file_format(path) == GraphFileFormat::kCsv) {
    for_each_graph(path, CsvMode::kClean, [&](CallGraph&& g) {
      out.push_back({std::move(g), ""});
    });
    return out;
  }
  for_each_stream(path, [&](ByteSource& src) {
    LineReader lines(src, kMaxLine);
    std::string_view line;
    bool overlong = false;
    std::string err;
    while (lines.next(&line, &overlong)) {
      if (overlong) throw InputError(src.name(), lines.line_no(), "line longer than 64 MiB");
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      auto g = parse_graph_json(line, &err);
      if (!g) throw InputError(src.name(), lines.line_no(), err);
      LabeledGraph lg{std::move(*g), ""};
      if (line.find("\"label\"") != std::string_view::npos) {
        nlohmann::json j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
        auto it = j.find("label");
        if (it != j.end() && !it->is_null()) {
          if (!it->is_string())
            throw InputError(src.name(), lines.line_no(),
                             "\"label\" must be a string (e.g. \"normal\" or a fault name)");
          lg.label = it->get<std::string>();
        }
      }
      out.push_back(std::move(lg));
    }
  });
  return out;
}

std::vector<App> choose_apps(const std::vector<LabeledGraph>& real, const AppOptions& opt) {
  std::map<std::string, size_t> count;
  for (const LabeledGraph& g : real)
    if (g.graph.num_edges() >= opt.min_edges && validate(g.graph).empty()) ++count[g.graph.service];
  std::vector<std::pair<std::string, size_t>> ranked(count.begin(), count.end());
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<App> apps;
  if (opt.all_services) {
    App a{"all", {}, 0, opt.min_edges};
    for (const auto& [s, n] : count) {
      a.services.push_back(s);
      a.graphs += n;
    }
    if (a.graphs) apps.push_back(std::move(a));
    return apps;
  }
  size_t next = 0;
  while (apps.size() < opt.apps && next < ranked.size()) {
    App a;
    a.min_edges = opt.min_edges;
    size_t first = next;
    while (next < ranked.size() && (a.graphs < opt.min_graphs || next == first)) {
      a.services.push_back(ranked[next].first);
      a.graphs += ranked[next].second;
      ++next;
    }
    if (a.graphs < opt.min_graphs && !apps.empty()) break;  // the rest is too small for an app
    if (a.services.size() == 1) {
      a.name = a.services[0];
    } else {
      a.name = fmt::format("pooled: {} services ({}+...)", a.services.size(), a.services[0]);
    }
    std::sort(a.services.begin(), a.services.end());
    apps.push_back(std::move(a));
  }
  return apps;
}

std::vector<const LabeledGraph*> app_graphs(const std::vector<LabeledGraph>& real, const App& app) {
  std::set<std::string> services(app.services.begin(), app.services.end());
  std::vector<const LabeledGraph*> out;
  for (const LabeledGraph& g : real)
    if (services.count(g.graph.service) && g.graph.num_edges() >= app.min_edges &&
        validate(g.graph).empty())
      out.push_back(&g);
  return out;
}

Split split_app(size_t n, uint64_t seed, double test_fraction) {
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::mt19937_64 rng(mix_seed(seed, 0x5917));
  for (size_t i = n; i > 1; --i) std::swap(idx[i - 1], idx[static_cast<size_t>(rng() % i)]);
  size_t n_test = static_cast<size_t>(std::llround(static_cast<double>(n) * test_fraction));
  Split s;
  s.test.assign(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(std::min(n_test, n)));
  s.train.assign(idx.begin() + static_cast<std::ptrdiff_t>(std::min(n_test, n)), idx.end());
  return s;
}

Split split_by_time(const std::vector<int64_t>& starts, double test_fraction,
                    const std::string& what) {
  size_t unknown = 0;
  for (int64_t t : starts) unknown += t == 0;
  if (unknown)
    throw InputError(what, 0,
                     fmt::format("the split by time needs every graph's start time "
                                 "(\"start_unix_nano\", written by span import): {} of {} "
                                 "graphs have none (use the split by trace)",
                                 unknown, starts.size()));
  size_t n = starts.size();
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](size_t a, size_t b) { return starts[a] < starts[b]; });
  size_t n_test =
      std::min(n, static_cast<size_t>(std::llround(static_cast<double>(n) * test_fraction)));
  Split s;
  s.train.assign(idx.begin(), idx.end() - static_cast<std::ptrdiff_t>(n_test));
  s.test.assign(idx.end() - static_cast<std::ptrdiff_t>(n_test), idx.end());
  return s;
}

bool is_normal_label(const std::string& label) { return label.empty() || label == "normal"; }

Split app_split(const App& app, const GraphRefs& app_real, uint64_t seed,
                const ExperimentOptions& opt) {
  if (opt.split == "time") {
    std::vector<int64_t> starts;
    starts.reserve(app_real.size());
    for (const LabeledGraph* g : app_real) starts.push_back(g->graph.start_unix_ns);
    return split_by_time(starts, opt.test_fraction, "app " + app.name);
  }
  if (opt.split != "trace")
    throw std::invalid_argument("the split must be \"trace\" or \"time\", not \"" + opt.split +
                                "\"");
  return split_app(app_real.size(), mix_seed(seed, hash_name(app.name)), opt.test_fraction);
}

std::string describe_split(const GraphRefs& app_real, const Split& split,
                           const std::string& split_kind) {
  if (split_kind != "time") return "";
  auto range = [&](const std::vector<size_t>& part) {
    if (part.empty()) return std::string("empty");
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i : part) {
      lo = std::min(lo, app_real[i]->graph.start_unix_ns);
      hi = std::max(hi, app_real[i]->graph.start_unix_ns);
    }
    auto utc = [](int64_t ns) { return utc_seconds_text(ns); };
    return utc(lo) + " to " + utc(hi);
  };
  return fmt::format("by time: training pool {} ({} graphs); test set {} ({} graphs)",
                     range(split.train), split.train.size(), range(split.test), split.test.size());
}

GraphRefs real_training_pool(const std::vector<LabeledGraph>& real, const ExperimentOptions& opt,
                             uint64_t seed, bool normal_only, std::vector<App>* apps_out) {
  std::vector<App> apps = choose_apps(real, opt.apps);
  GraphRefs out;
  for (const App& app : apps) {
    GraphRefs app_real = app_graphs(real, app);
    Split split = app_split(app, app_real, seed, opt);
    std::sort(split.train.begin(), split.train.end());
    for (size_t i : split.train)
      if (!normal_only || is_normal_label(app_real[i]->label)) out.push_back(app_real[i]);
  }
  if (apps_out) *apps_out = std::move(apps);
  return out;
}

GraphRefs training_graphs(const TrainingSource& src, const App& app, const GraphRefs& app_real,
                          const Split& split, uint64_t seed, std::string* note) {
  GraphRefs out;
  if (src.name == "real") {
    for (size_t i : split.train) out.push_back(app_real[i]);
    if (note) *note = "real training pool";
    return out;
  }
  std::unordered_set<std::string> services(app.services.begin(), app.services.end());
  GraphRefs mine;
  for (const LabeledGraph& g : src.graphs)
    if (services.count(g.graph.service) && g.graph.num_edges() >= app.min_edges) mine.push_back(&g);
  std::unordered_map<std::string, bool> real_ids;  // trace id -> in this seed's training pool
  for (const LabeledGraph* g : app_real)
    if (!g->graph.trace_id.empty()) real_ids[g->graph.trace_id] = false;
  for (size_t i : split.train)
    if (!app_real[i]->graph.trace_id.empty()) real_ids[app_real[i]->graph.trace_id] = true;
  size_t matched = 0;
  for (const LabeledGraph* g : mine) matched += real_ids.count(g->graph.trace_id) > 0;
  if (!mine.empty() && matched * 2 >= mine.size()) {
    for (const LabeledGraph* g : mine) {
      auto it = real_ids.find(g->graph.trace_id);
      if (it != real_ids.end() && it->second) out.push_back(g);
    }
    if (note)
      *note =
          fmt::format("aligned: {} graphs made like this seed's real training pool", out.size());
    return out;
  }
  // Unaligned: a seeded sample of the training pool's size.
  std::mt19937_64 rng(mix_seed(seed, hash_name(src.name)));
  for (size_t i = mine.size(); i > 1; --i)
    std::swap(mine[i - 1], mine[static_cast<size_t>(rng() % i)]);
  if (mine.size() > split.train.size()) mine.resize(split.train.size());
  if (note)
    *note = fmt::format(
        "unaligned: {} of the set's graphs of this app, sampled to the real pool's size (may "
        "include graphs made like test graphs)",
        mine.size());
  return mine;
}

TrainingSource parse_training_source(const std::string& spec) {
  TrainingSource s;
  size_t eq = spec.find('=');
  if (eq == std::string::npos) {
    if (spec == "real") {
      s.name = "real";
      return s;
    }
    s.name = stem_of(spec);
    s.path = spec;
  } else {
    s.name = spec.substr(0, eq);
    s.path = spec.substr(eq + 1);
  }
  if (s.name.empty()) throw InputError(spec, 0, "a training set needs a name: NAME=FILE");
  if (s.name == "real" && !s.path.empty())
    throw InputError(spec, 0,
                     "\"real\" is the real training pool split from --real; give the file "
                     "another name (e.g. real2=FILE)");
  if (s.name != "real" && s.path.empty()) throw InputError(spec, 0, "expected NAME=FILE");
  return s;
}

ExperimentResult run_experiment(const TaskSpec& spec, const std::vector<LabeledGraph>& real,
                                const std::vector<TrainingSource>& sources,
                                const ExperimentOptions& opt) {
  if (sources.empty() || sources[0].name != "real")
    throw std::invalid_argument("run_experiment: the first training source must be \"real\"");
  if (spec.metrics.empty()) throw std::invalid_argument("run_experiment: no metric");
  ExperimentResult res;
  res.task = spec.task;
  res.model = spec.model;
  res.labels = spec.labels;
  for (const Metric& m : spec.metrics) res.metric_names.push_back(m.name);
  res.tolerance = spec.tolerance;
  res.display_scale = spec.display_scale;
  res.seeds = opt.seeds;
  res.split = opt.split;
  res.reference = opt.reference;
  size_t ref = sources.size();
  for (size_t s = 0; s < sources.size(); ++s)
    if (sources[s].name == opt.reference) ref = s;
  if (ref == sources.size())
    throw std::invalid_argument("run_experiment: no training set named \"" + opt.reference +
                                "\" (the reference of the gaps)");
  res.apps = choose_apps(real, opt.apps);
  if (res.apps.empty()) throw std::runtime_error("no app: the real corpus has no valid graph");
  const Metric& primary = spec.metrics[0];
  size_t total = res.apps.size() * opt.seeds * sources.size(), done = 0;
  auto t_start = std::chrono::steady_clock::now();

  for (const App& app : res.apps) {
    GraphRefs app_real = app_graphs(real, app);
    std::vector<SourceOutcome> rows(sources.size());
    for (size_t s = 0; s < sources.size(); ++s) {
      rows[s].app = app.name;
      rows[s].source = sources[s].name;
      rows[s].path = sources[s].path;
    }
    for (size_t k = 0; k < opt.seeds; ++k) {
      uint64_t seed = opt.base_seed + k;
      Split split = app_split(app, app_real, seed, opt);
      if (k == 0) res.split_notes.push_back(describe_split(app_real, split, opt.split));
      GraphRefs pool, test;
      for (size_t i : split.train) pool.push_back(app_real[i]);
      for (size_t i : split.test) test.push_back(app_real[i]);
      // Every source first (the reference may come after others), then the
      // gaps to the reference on shared bootstrap resamples of the test samples.
      std::vector<TaskRun> runs(sources.size());
      std::vector<SeedOutcome> outs(sources.size());
      std::vector<bool> ran(sources.size(), false);
      for (size_t s = 0; s < sources.size(); ++s) {
        auto t0 = std::chrono::steady_clock::now();
        SeedOutcome& o = outs[s];
        o.seed = seed;
        GraphRefs train = training_graphs(sources[s], app, app_real, split, seed, &o.note);
        o.train_graphs = train.size();
        o.test_graphs = test.size();
        TaskRun& run = runs[s];
        if (train.empty()) {
          run.note = "no training graph";
        } else {
          run = spec.run(train, pool, test, mix_seed(seed, 77));
        }
        if (!run.note.empty()) o.note += "; " + run.note;
        o.train_samples = run.train_samples;
        o.train_positive_rate = run.train_positive_rate;
        if (s > 0 && !train.empty() && !runs[0].y.empty() && run.y != runs[0].y)
          throw std::logic_error("run_experiment: a task gave different test samples per source");
        o.test_samples = run.y.size();
        o.test_positive_rate = run.y.empty() ? std::nan("") : positive_rate(run.y);
        ran[s] = !train.empty() && !run.y.empty();
        for (const Metric& m : spec.metrics)
          o.metrics.push_back(ran[s] ? m.fn(run.score, run.y) : std::nan(""));
        if (ran[s] && run.kind.size() == run.y.size()) score_by_kind(primary, run, &o);
        ++done;
        if (opt.progress) {
          double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          double all =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
          std::fprintf(stderr,
                       "%s [%zu/%zu] app %s seed %llu %-14s train %zu graphs, %s %.4g (%.1f s; "
                       "ETA %.0f s)\n",
                       spec.task.c_str(), done, total, app.name.c_str(),
                       static_cast<unsigned long long>(seed), sources[s].name.c_str(),
                       o.train_graphs, primary.name.c_str(), o.metrics[0], el,
                       all / static_cast<double>(done) * static_cast<double>(total - done));
        }
      }
      const TaskRun& ref_run = runs[ref];
      std::vector<std::vector<size_t>> resamples;
      {
        std::mt19937_64 rng(mix_seed(seed, 0xB007));
        size_t n = ref_run.y.size();
        if (n > 0)
          for (size_t b = 0; b < opt.bootstrap; ++b) {
            std::vector<size_t> r(n);
            for (size_t& v : r) v = static_cast<size_t>(rng() % n);
            resamples.push_back(std::move(r));
          }
      }
      const double ref_metric = outs[ref].metrics.empty() ? std::nan("") : outs[ref].metrics[0];
      for (size_t s = 0; s < sources.size(); ++s) {
        SeedOutcome& o = outs[s];
        const TaskRun& run = runs[s];
        if (s == ref) {
          o.gap = o.gap_se = 0;
        } else if (!ran[s] || !ran[ref]) {
          o.gap = o.gap_se = std::nan("");
        } else {
          o.gap = o.metrics[0] - ref_metric;
          std::vector<double> diffs;
          std::vector<double> sa, sb;
          std::vector<int> yy;
          for (const auto& r : resamples) {
            sa.clear();
            sb.clear();
            yy.clear();
            for (size_t i : r) {
              sa.push_back(run.score[i]);
              sb.push_back(ref_run.score[i]);
              yy.push_back(run.y[i]);
            }
            double d = primary.fn(sa, yy) - primary.fn(sb, yy);
            if (!std::isnan(d)) diffs.push_back(d);
          }
          o.gap_se = mean_sd(diffs).sd;
        }
        rows[s].seeds.push_back(std::move(o));
      }
    }
    for (size_t s = 0; s < sources.size(); ++s) {
      SourceOutcome& r = rows[s];
      for (size_t m = 0; m < spec.metrics.size(); ++m) {
        std::vector<double> v;
        for (const SeedOutcome& o : r.seeds) v.push_back(o.metrics[m]);
        r.metrics.push_back(mean_sd(v));
      }
      std::vector<double> gaps;
      double se2 = 0;
      size_t n = 0;
      for (const SeedOutcome& o : r.seeds) {
        gaps.push_back(o.gap);
        if (!std::isnan(o.gap)) {
          se2 += o.gap_se * o.gap_se;
          ++n;
        }
      }
      std::map<std::string, std::vector<double>> kinds;
      for (const SeedOutcome& o : r.seeds)
        for (const auto& [kind, v] : o.by_kind) kinds[kind].push_back(v);
      for (const auto& [kind, v] : kinds) r.by_kind[kind] = mean_sd(v);
      r.gap = mean_sd(gaps);
      r.gap_se = n ? std::sqrt(se2) / static_cast<double>(n) : std::nan("");
      r.pass = s == ref || (!std::isnan(r.gap.mean) &&
                            std::fabs(r.gap.mean) <= std::max(spec.tolerance, 1.96 * r.gap_se));
      res.rows.push_back(std::move(r));
    }
  }
  return res;
}

namespace {

nlohmann::ordered_json num(double v) {
  return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
}
double get_num(const nlohmann::json& j, const char* k) {
  auto it = j.find(k);
  if (it == j.end())
    throw std::runtime_error(std::string("downstream result: missing \"") + k + "\"");
  return it->is_null() ? std::nan("") : it->get<double>();
}
const nlohmann::json& need(const nlohmann::json& j, const char* k) {
  auto it = j.find(k);
  if (it == j.end())
    throw std::runtime_error(std::string("downstream result: missing \"") + k + "\"");
  return *it;
}

}  // namespace

nlohmann::ordered_json ExperimentResult::to_json() const {
  nlohmann::ordered_json j;
  j["task"] = task;
  j["model"] = model;
  j["labels"] = labels;
  j["metrics"] = metric_names;
  j["primary_metric"] = metric_names.empty() ? "" : metric_names[0];
  j["tolerance"] = tolerance;
  j["display_scale"] = display_scale;
  j["criterion"] = "|mean gap of the primary metric to real| <= max(tolerance, 1.96 * SE)";
  j["seeds"] = seeds;
  j["split"] = split;
  j["reference"] = reference;
  nlohmann::ordered_json apps_j = nlohmann::ordered_json::array();
  for (size_t i = 0; i < apps.size(); ++i) {
    const App& a = apps[i];
    nlohmann::ordered_json aj = {{"name", a.name},
                                 {"services", a.services},
                                 {"graphs", a.graphs},
                                 {"min_edges", a.min_edges}};
    if (i < split_notes.size() && !split_notes[i].empty()) aj["split"] = split_notes[i];
    apps_j.push_back(aj);
  }
  j["apps"] = apps_j;
  nlohmann::ordered_json rows_j = nlohmann::ordered_json::array();
  for (const SourceOutcome& r : rows) {
    nlohmann::ordered_json rj;
    rj["app"] = r.app;
    rj["source"] = r.source;
    rj["path"] = r.path;
    nlohmann::ordered_json mean = nlohmann::ordered_json::object(),
                           sd = nlohmann::ordered_json::object();
    for (size_t m = 0; m < metric_names.size() && m < r.metrics.size(); ++m) {
      mean[metric_names[m]] = num(r.metrics[m].mean);
      sd[metric_names[m]] = num(r.metrics[m].sd);
    }
    rj["mean"] = mean;
    rj["sd"] = sd;
    rj["gap"] = num(r.gap.mean);
    rj["gap_sd"] = num(r.gap.sd);
    rj["gap_se"] = num(r.gap_se);
    rj["pass"] = r.pass;
    if (!r.by_kind.empty()) {
      nlohmann::ordered_json bk = nlohmann::ordered_json::object();
      for (const auto& [kind, m] : r.by_kind) bk[kind] = {{"mean", num(m.mean)}, {"sd", num(m.sd)}};
      rj["by_kind"] = bk;
    }
    nlohmann::ordered_json seeds_j = nlohmann::ordered_json::array();
    for (const SeedOutcome& o : r.seeds) {
      nlohmann::ordered_json sj;
      sj["seed"] = o.seed;
      sj["train_graphs"] = o.train_graphs;
      sj["test_graphs"] = o.test_graphs;
      sj["train_samples"] = o.train_samples;
      sj["test_samples"] = o.test_samples;
      sj["train_positive_rate"] = num(o.train_positive_rate);
      sj["test_positive_rate"] = num(o.test_positive_rate);
      nlohmann::ordered_json mj = nlohmann::ordered_json::object();
      for (size_t m = 0; m < metric_names.size() && m < o.metrics.size(); ++m)
        mj[metric_names[m]] = num(o.metrics[m]);
      sj["metrics"] = mj;
      sj["gap"] = num(o.gap);
      sj["gap_se"] = num(o.gap_se);
      sj["note"] = o.note;
      if (!o.by_kind.empty()) {
        nlohmann::ordered_json bk = nlohmann::ordered_json::object();
        for (const auto& [kind, v] : o.by_kind)
          bk[kind] = {{"value", num(v)}, {"test_positives", o.positives_by_kind.at(kind)}};
        sj["by_kind"] = bk;
      }
      seeds_j.push_back(sj);
    }
    rj["per_seed"] = seeds_j;
    rows_j.push_back(rj);
  }
  j["results"] = rows_j;
  return j;
}

ExperimentResult ExperimentResult::from_json(const nlohmann::json& j) {
  ExperimentResult r;
  r.task = need(j, "task").get<std::string>();
  r.model = need(j, "model").get<std::string>();
  r.labels = need(j, "labels").get<std::string>();
  r.metric_names = need(j, "metrics").get<std::vector<std::string>>();
  r.tolerance = get_num(j, "tolerance");
  r.display_scale = get_num(j, "display_scale");
  r.seeds = need(j, "seeds").get<size_t>();
  // Both absent in results written before the time split and the reference.
  r.split = j.value("split", std::string("trace"));
  r.reference = j.value("reference", std::string("real"));
  for (const auto& a : need(j, "apps")) {
    r.apps.push_back({need(a, "name").get<std::string>(),
                      need(a, "services").get<std::vector<std::string>>(),
                      need(a, "graphs").get<size_t>(), need(a, "min_edges").get<size_t>()});
    r.split_notes.push_back(a.value("split", std::string()));
  }
  for (const auto& rj : need(j, "results")) {
    SourceOutcome s;
    s.app = need(rj, "app").get<std::string>();
    s.source = need(rj, "source").get<std::string>();
    s.path = need(rj, "path").get<std::string>();
    for (const std::string& m : r.metric_names)
      s.metrics.push_back(
          {get_num(need(rj, "mean"), m.c_str()), get_num(need(rj, "sd"), m.c_str()), 0});
    s.gap.mean = get_num(rj, "gap");
    s.gap.sd = get_num(rj, "gap_sd");
    s.gap_se = get_num(rj, "gap_se");
    s.pass = need(rj, "pass").get<bool>();
    for (const auto& sj : need(rj, "per_seed")) {
      SeedOutcome o;
      o.seed = need(sj, "seed").get<uint64_t>();
      o.train_graphs = need(sj, "train_graphs").get<size_t>();
      o.test_graphs = need(sj, "test_graphs").get<size_t>();
      o.train_samples = need(sj, "train_samples").get<size_t>();
      o.test_samples = need(sj, "test_samples").get<size_t>();
      o.train_positive_rate = get_num(sj, "train_positive_rate");
      o.test_positive_rate = get_num(sj, "test_positive_rate");
      for (const std::string& m : r.metric_names)
        o.metrics.push_back(get_num(need(sj, "metrics"), m.c_str()));
      o.gap = get_num(sj, "gap");
      o.gap_se = get_num(sj, "gap_se");
      o.note = need(sj, "note").get<std::string>();
      if (sj.contains("by_kind"))
        for (const auto& [kind, v] : sj["by_kind"].items()) {
          o.by_kind[kind] = get_num(v, "value");
          o.positives_by_kind[kind] = need(v, "test_positives").get<size_t>();
        }
      s.seeds.push_back(std::move(o));
    }
    for (size_t m = 0; m < s.metrics.size(); ++m) s.metrics[m].n = s.seeds.size();
    if (rj.contains("by_kind"))
      for (const auto& [kind, v] : rj["by_kind"].items())
        s.by_kind[kind] = {get_num(v, "mean"), get_num(v, "sd"), s.seeds.size()};
    r.rows.push_back(std::move(s));
  }
  return r;
}

std::string ExperimentResult::table() const {
  auto f = [&](double v) {
    return std::isfinite(v) ? fmt::format("{:.{}f}", v * display_scale, display_scale > 1 ? 1 : 3)
                            : std::string("n/a");
  };
  std::vector<std::vector<std::string>> cells;
  std::vector<std::string> head = {"app", "training set", "train graphs", "test samples",
                                   "test pos %"};
  for (const std::string& m : metric_names) head.push_back(m + " (mean ± sd)");
  head.push_back("gap to " + reference + " ± SE");
  head.push_back("pass");
  cells.push_back(head);
  for (const SourceOutcome& r : rows) {
    double tg = 0, ts = 0, pr = 0;
    for (const SeedOutcome& o : r.seeds) {
      tg += static_cast<double>(o.train_graphs);
      ts += static_cast<double>(o.test_samples);
      pr += std::isfinite(o.test_positive_rate) ? o.test_positive_rate : 0;
    }
    double n = r.seeds.empty() ? 1 : static_cast<double>(r.seeds.size());
    std::vector<std::string> row = {r.app, r.source, fmt::format("{:.0f}", tg / n),
                                    fmt::format("{:.0f}", ts / n),
                                    fmt::format("{:.1f}", 100 * pr / n)};
    for (const MeanSd& m : r.metrics) row.push_back(f(m.mean) + " ± " + f(m.sd));
    row.push_back(r.source == reference ? "-" : f(r.gap.mean) + " ± " + f(r.gap_se));
    row.push_back(r.source == reference ? "-" : (r.pass ? "yes" : "NO"));
    cells.push_back(row);
  }
  std::string out = fmt::format("{}: {}; labels: {}\n", task, model, labels);
  for (size_t i = 0; i < apps.size() && i < split_notes.size(); ++i)
    if (!split_notes[i].empty())
      out += fmt::format("split of {} {}\n", apps[i].name, split_notes[i]);
  out += render_table(cells);
  out += fmt::format(
      "pass: |mean gap| <= max({}, 1.96 SE) over {} seeds; metrics{} on the same real test "
      "samples per seed\n",
      f(tolerance), seeds, display_scale > 1 ? " in points (%)" : "");
  // The primary metric per kind of positive (e.g. per fault type).
  std::vector<std::string> kinds;
  for (const SourceOutcome& r : rows)
    for (const auto& [kind, m] : r.by_kind)
      if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) kinds.push_back(kind);
  std::sort(kinds.begin(), kinds.end());
  if (!kinds.empty()) {
    std::vector<std::vector<std::string>> k_cells;
    std::vector<std::string> k_head = {"app", "training set"};
    for (const std::string& k : kinds) k_head.push_back(k);
    k_cells.push_back(k_head);
    for (const SourceOutcome& r : rows) {
      std::vector<std::string> row = {r.app, r.source};
      for (const std::string& k : kinds) {
        auto it = r.by_kind.find(k);
        if (it == r.by_kind.end()) {
          row.push_back("n/a");
          continue;
        }
        double pos = 0;
        for (const SeedOutcome& o : r.seeds) {
          auto p = o.positives_by_kind.find(k);
          pos += p == o.positives_by_kind.end() ? 0 : static_cast<double>(p->second);
        }
        pos /= r.seeds.empty() ? 1 : static_cast<double>(r.seeds.size());
        row.push_back(f(it->second.mean) + " ± " + f(it->second.sd) +
                      fmt::format(" ({:.0f})", pos));
      }
      k_cells.push_back(row);
    }
    out += fmt::format(
        "{} of the negatives against each kind of positive (mean ± sd; test positives of that "
        "kind):\n",
        metric_names.empty() ? std::string("metric") : metric_names[0]);
    out += render_table(k_cells);
  }
  return out;
}

}  // namespace tracelm::downstream
