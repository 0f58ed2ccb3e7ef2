#include "baseline/probabilistic.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/validate.h"
#include "corpus/corpus.h"
#include "io/input_error.h"

namespace tracelm {

// ---------------------------------------------------------------- Categorical

void Categorical::add(int64_t value, uint64_t weight) {
  if (weight) pending_[value] += weight;
}

void Categorical::freeze() {
  if (pending_.empty()) return;
  for (size_t i = 0; i < values_.size(); ++i)
    pending_[values_[i]] += cum_[i] - (i ? cum_[i - 1] : 0);
  values_.clear();
  cum_.clear();
  total_ = 0;
  for (auto& [v, w] : pending_) {
    total_ += w;
    values_.push_back(v);
    cum_.push_back(total_);
  }
  pending_.clear();
}

int64_t Categorical::sample(Rng& rng) const {
  if (total_ == 0) throw std::logic_error("Categorical::sample on an empty or unfrozen table");
  uint64_t r = std::min<uint64_t>(
      static_cast<uint64_t>(rng.uniform() * static_cast<double>(total_)), total_ - 1);
  return values_[std::upper_bound(cum_.begin(), cum_.end(), r) - cum_.begin()];
}

nlohmann::json Categorical::to_json() const {
  nlohmann::json a = nlohmann::json::array();
  for (size_t i = 0; i < values_.size(); ++i)
    a.push_back({values_[i], cum_[i] - (i ? cum_[i - 1] : 0)});
  return a;
}

Categorical Categorical::from_json(const nlohmann::json& j) {
  Categorical c;
  if (!j.is_array()) throw std::runtime_error("distribution: expected an array");
  for (const auto& p : j) {
    if (!p.is_array() || p.size() != 2)
      throw std::runtime_error("distribution: expected [value, weight] pairs");
    c.add(p[0].get<int64_t>(), p[1].get<uint64_t>());
  }
  c.freeze();
  return c;
}

// ---------------------------------------------------------------- generation

namespace {

const Categorical* find_cell(const std::map<int64_t, Categorical>& m, int64_t key) {
  auto it = m.find(key);
  return it == m.end() || it->second.total() == 0 ? nullptr : &it->second;
}

const std::vector<int64_t>* find_values(const std::map<int64_t, std::vector<int64_t>>& m,
                                        int64_t key) {
  auto it = m.find(key);
  return it == m.end() || it->second.empty() ? nullptr : &it->second;
}

}  // namespace

int64_t ProbabilisticModel::sample_children(Rng& rng, int depth, int type) const {
  const Categorical* c = find_cell(children_, key2(depth, type));
  if (!c) c = find_cell(children_depth_, depth);
  return c ? std::max<int64_t>(0, c->sample(rng)) : 0;
}

int ProbabilisticModel::sample_child_type(Rng& rng, int depth, int parent_type) const {
  const Categorical* c = find_cell(child_type_, key2(depth, parent_type));
  if (!c) c = find_cell(child_type_depth_, depth);
  if (!c) c = &type_all_;
  return static_cast<int>(c->sample(rng));
}

int32_t ProbabilisticModel::sample_callee(Rng& rng, int32_t caller, int type, int depth) const {
  const Categorical* c = caller >= 0 ? find_cell(callee_, key2(caller, type)) : nullptr;
  if (!c) c = find_cell(callee_by_depth_, key2(depth, type));
  if (!c) c = find_cell(callee_by_type_, type);
  if (!c) {  // a type never seen at all: any callee of any type
    for (auto& [t, cat] : callee_by_type_)
      if (cat.total()) return static_cast<int32_t>(cat.sample(rng));
    throw std::logic_error("probabilistic model has no callees");
  }
  return static_cast<int32_t>(c->sample(rng));
}

int64_t ProbabilisticModel::sample_duration(Rng& rng, int type, int depth) const {
  const std::vector<int64_t>* v = find_values(rt_, key2(depth, type));
  if (!v) v = find_values(rt_type_, type);
  if (!v) v = &rt_all_;
  if (v->empty()) return 0;
  return std::max<int64_t>(0, (*v)[rng.range(0, static_cast<int64_t>(v->size()) - 1)]);
}

CallGraph ProbabilisticModel::sample_once(Rng& rng, const Service* svc,
                                          const std::string& service_id) const {
  CallGraph g;
  g.service = service_id;
  int64_t root = (svc ? svc->roots : all_roots_).sample(rng);
  int32_t root_callee = static_cast<int32_t>(root / 8);
  int root_type = static_cast<int>(root % 8);
  std::vector<int32_t> callee_ids;  // parallel to g.edges
  g.edges.push_back(Edge{RpcId::root(), std::string(kUserNode), names_[root_callee],
                         static_cast<CallType>(root_type), 0, sample_duration(rng, root_type, 1)});
  callee_ids.push_back(root_callee);

  struct Child {
    int type;
    int32_t callee;
    int64_t dur, start = 0;
  };
  std::vector<Child> kids;
  std::vector<int64_t> gaps;
  // Breadth first: g.edges doubles as the queue.
  for (size_t head = 0; head < g.edges.size(); ++head) {
    if (static_cast<int64_t>(g.edges.size()) >= max_edges_) break;
    const int depth = g.edges[head].id.depth();
    if (depth >= max_depth_) continue;
    const int ptype = static_cast<int>(g.edges[head].type);
    int64_t k = sample_children(rng, depth, ptype);
    k = std::min<int64_t>(k, max_edges_ - static_cast<int64_t>(g.edges.size()));
    if (k <= 0) continue;
    const int64_t ps = g.edges[head].start_ms, pf = g.edges[head].finish_ms;
    const int64_t window = pf - ps;
    const int32_t caller = callee_ids[head];
    kids.clear();
    int64_t sum = 0;
    for (int64_t i = 0; i < k; ++i) {
      Child c;
      c.type = sample_child_type(rng, depth + 1, ptype);
      c.callee = sample_callee(rng, caller, c.type, depth + 1);
      c.dur = sample_duration(rng, c.type, depth + 1);
      sum += c.dur;
      kids.push_back(c);
    }
    if (k >= 2 && rng.chance(p_sequential_)) {
      // One after another: shrink proportionally to fit, spread the spare time.
      if (sum > window) {
        int64_t s2 = 0;
        for (Child& c : kids) {
          c.dur = static_cast<int64_t>(std::floor(
              static_cast<double>(c.dur) * static_cast<double>(window) / static_cast<double>(sum)));
          s2 += c.dur;
        }
        for (size_t i = 0; s2 > window; i = (i + 1) % kids.size())  // rounding guard
          if (kids[i].dur > 0) --kids[i].dur, --s2;
        sum = s2;
      }
      const int64_t slack = window - sum;
      gaps.clear();
      for (int64_t i = 0; i < k; ++i) gaps.push_back(rng.range(0, slack));
      std::sort(gaps.begin(), gaps.end());
      int64_t before = 0;
      for (int64_t i = 0; i < k; ++i) {
        kids[i].start = ps + gaps[i] + before;
        before += kids[i].dur;
      }
    } else {
      for (Child& c : kids) {
        c.dur = std::min(c.dur, window);
        c.start = ps + rng.range(0, window - c.dur);
      }
    }
    const RpcId pid = g.edges[head].id;
    const std::string pcallee = g.edges[head].callee;
    for (int64_t i = 0; i < k; ++i) {
      const Child& c = kids[i];
      g.edges.push_back(Edge{pid.child(static_cast<uint64_t>(i + 1)), pcallee, names_[c.callee],
                             static_cast<CallType>(c.type), c.start, c.start + c.dur});
      callee_ids.push_back(c.callee);
    }
  }
  g.canonicalize();
  return g;
}

BaselineResult ProbabilisticModel::generate(Rng& rng, const BaselineRequest& req) const {
  if (services_.empty() || all_roots_.total() == 0)
    throw std::logic_error("probabilistic model fitted on no graphs");
  const Service* svc = nullptr;
  std::string service_id;
  if (req.service) {
    service_id = *req.service;
    auto it = service_index_.find(service_id);
    if (it != service_index_.end()) svc = &services_[it->second];
  }
  const bool targets = req.num_edges || req.depth;
  BaselineResult best;
  int64_t best_dist = -1;
  const int attempts = targets ? std::max(1, req.max_attempts) : 1;
  for (int a = 1; a <= attempts; ++a) {
    const Service* s = svc;
    std::string sid = service_id;
    if (!req.service) {
      s = &services_[static_cast<size_t>(service_dist_.sample(rng))];
      sid = s->id;
    }
    CallGraph g = sample_once(rng, s, sid);
    int64_t dist = 0;
    if (req.num_edges) dist += std::llabs(static_cast<int64_t>(g.num_edges()) - *req.num_edges);
    if (req.depth) dist += std::llabs(static_cast<int64_t>(g.depth()) - *req.depth);
    if (best_dist < 0 || dist < best_dist) {
      best.graph = std::move(g);
      best_dist = dist;
    }
    best.attempts = a;
    if (dist == 0) break;
  }
  best.matched = best_dist == 0;
  return best;
}

// ---------------------------------------------------------------- JSON

namespace {

constexpr const char* kFormat = "tracelm-probabilistic";
constexpr int kVersion = 1;

std::string type_str(int64_t t) { return std::string(call_type_name(static_cast<CallType>(t))); }

int64_t type_of(const nlohmann::json& j) {
  auto t = parse_call_type(j.get<std::string>());
  if (!t) throw std::runtime_error("unknown type " + j.dump());
  return static_cast<int64_t>(*t);
}

}  // namespace

nlohmann::json ProbabilisticModel::to_json() const {
  nlohmann::ordered_json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["note"] =
      "empirical count tables; distributions are [[value, weight], ...]; types are coded "
      "0=http 1=rpc 2=mc 3=db 4=mq; microservices are indices into 'microservices'; roots "
      "are callee*8+type";
  j["fitted_graphs"] = fitted_graphs_;
  j["max_depth"] = max_depth_;
  j["max_edges"] = max_edges_;
  j["p_sequential"] = p_sequential_;
  j["microservices"] = names_;
  nlohmann::json svcs = nlohmann::json::array();
  for (size_t i = 0; i < services_.size(); ++i) {
    svcs.push_back({{"id", services_[i].id}, {"roots", services_[i].roots.to_json()}});
  }
  j["services"] = svcs;
  j["service_dist"] = service_dist_.to_json();
  auto by_depth_type = [](const std::map<int64_t, Categorical>& m, const char* dname) {
    nlohmann::json a = nlohmann::json::array();
    for (auto& [k, c] : m)
      a.push_back({{dname, k / 8}, {"type", type_str(k % 8)}, {"dist", c.to_json()}});
    return a;
  };
  auto by_one = [](const std::map<int64_t, Categorical>& m, const char* name, bool is_type) {
    nlohmann::json a = nlohmann::json::array();
    for (auto& [k, c] : m) {
      nlohmann::json key = is_type ? nlohmann::json(type_str(k)) : nlohmann::json(k);
      a.push_back({{name, key}, {"dist", c.to_json()}});
    }
    return a;
  };
  j["children"] = by_depth_type(children_, "depth");
  j["children_by_depth"] = by_one(children_depth_, "depth", false);
  j["child_type"] = by_depth_type(child_type_, "depth");  // "type" = the parent's type
  j["child_type_by_depth"] = by_one(child_type_depth_, "depth", false);
  j["type_all"] = type_all_.to_json();
  j["callee"] = by_depth_type(callee_, "caller");
  j["callee_by_depth"] = by_depth_type(callee_by_depth_, "depth");
  j["callee_by_type"] = by_one(callee_by_type_, "type", true);
  nlohmann::json rt = nlohmann::json::array();
  for (auto& [k, v] : rt_)
    rt.push_back({{"depth", k / 8}, {"type", type_str(k % 8)}, {"values", v}});
  j["response_time"] = rt;
  nlohmann::json rtt = nlohmann::json::array();
  for (auto& [k, v] : rt_type_) rtt.push_back({{"type", type_str(k)}, {"values", v}});
  j["response_time_by_type"] = rtt;
  j["response_time_all"] = rt_all_;
  return nlohmann::json(j);
}

ProbabilisticModel ProbabilisticModel::from_json(const nlohmann::json& j) {
  try {
    if (!j.is_object() || j.value("format", "") != kFormat)
      throw std::runtime_error("not a tracelm probabilistic model (format field)");
    if (j.at("version").get<int>() != kVersion)
      throw std::runtime_error("unsupported model version " + j.at("version").dump());
    ProbabilisticModel m;
    m.fitted_graphs_ = j.at("fitted_graphs").get<uint64_t>();
    m.max_depth_ = j.at("max_depth").get<int>();
    m.max_edges_ = j.at("max_edges").get<int64_t>();
    m.p_sequential_ = j.at("p_sequential").get<double>();
    m.names_ = j.at("microservices").get<std::vector<std::string>>();
    const int64_t nn = static_cast<int64_t>(m.names_.size());
    auto check_ms = [&](const Categorical& c, bool root) {
      for (auto& p : c.to_json()) {
        int64_t v = p[0].get<int64_t>();
        int64_t id = root ? v / 8 : v;
        if (id < 0 || id >= nn || (root && (v % 8) >= kNumCallTypes))
          throw std::runtime_error("microservice index out of range");
      }
    };
    for (auto& s : j.at("services")) {
      Service sv;
      sv.id = s.at("id").get<std::string>();
      sv.roots = Categorical::from_json(s.at("roots"));
      check_ms(sv.roots, true);
      for (auto& p : sv.roots.to_json())
        m.all_roots_.add(p[0].get<int64_t>(), p[1].get<uint64_t>());
      m.service_index_[sv.id] = m.services_.size();
      m.services_.push_back(std::move(sv));
    }
    m.all_roots_.freeze();
    m.service_dist_ = Categorical::from_json(j.at("service_dist"));
    for (auto& p : m.service_dist_.to_json()) {
      int64_t v = p[0].get<int64_t>();
      if (v < 0 || v >= static_cast<int64_t>(m.services_.size()))
        throw std::runtime_error("service index out of range");
    }
    auto check_types = [](const Categorical& c) {
      for (auto& p : c.to_json()) {
        int64_t v = p[0].get<int64_t>();
        if (v < 0 || v >= kNumCallTypes) throw std::runtime_error("type code out of range");
      }
    };
    auto read_dt = [&](const char* name, const char* dname, std::map<int64_t, Categorical>& out) {
      for (auto& e : j.at(name))
        out[key2(e.at(dname).get<int64_t>(), type_of(e.at("type")))] =
            Categorical::from_json(e.at("dist"));
    };
    auto read_one = [&](const char* name, const char* kname, bool is_type,
                        std::map<int64_t, Categorical>& out) {
      for (auto& e : j.at(name))
        out[is_type ? type_of(e.at(kname)) : e.at(kname).get<int64_t>()] =
            Categorical::from_json(e.at("dist"));
    };
    read_dt("children", "depth", m.children_);
    read_one("children_by_depth", "depth", false, m.children_depth_);
    read_dt("child_type", "depth", m.child_type_);
    read_one("child_type_by_depth", "depth", false, m.child_type_depth_);
    m.type_all_ = Categorical::from_json(j.at("type_all"));
    read_dt("callee", "caller", m.callee_);
    read_dt("callee_by_depth", "depth", m.callee_by_depth_);
    read_one("callee_by_type", "type", true, m.callee_by_type_);
    for (auto& [k, c] : m.child_type_) check_types(c);
    for (auto& [k, c] : m.child_type_depth_) check_types(c);
    check_types(m.type_all_);
    for (auto& [k, c] : m.callee_) {
      if (k / 8 < 0 || k / 8 >= nn) throw std::runtime_error("caller index out of range");
      check_ms(c, false);
    }
    for (auto& [k, c] : m.callee_by_depth_) check_ms(c, false);
    for (auto& [k, c] : m.callee_by_type_) check_ms(c, false);
    for (auto& e : j.at("response_time"))
      m.rt_[key2(e.at("depth").get<int64_t>(), type_of(e.at("type")))] =
          e.at("values").get<std::vector<int64_t>>();
    for (auto& e : j.at("response_time_by_type"))
      m.rt_type_[type_of(e.at("type"))] = e.at("values").get<std::vector<int64_t>>();
    m.rt_all_ = j.at("response_time_all").get<std::vector<int64_t>>();
    if (m.max_depth_ < 1 || m.max_depth_ > 15) throw std::runtime_error("max_depth out of range");
    if (!m.services_.empty() && m.max_edges_ < 1) throw std::runtime_error("max_edges < 1");
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(std::string("malformed probabilistic model: ") + e.what());
  }
}

void ProbabilisticModel::save(const std::string& path) const {
  AtomicFile f(path);
  f.write(to_json().dump());
  f.write("\n");
  f.close();
}

ProbabilisticModel ProbabilisticModel::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, 0, "cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) throw InputError(path, 0, "not JSON");
  try {
    return from_json(j);
  } catch (const std::runtime_error& e) {
    throw InputError(path, 0, e.what());
  }
}

// ---------------------------------------------------------------- fitting

ProbabilisticFitter::ProbabilisticFitter(ProbabilisticOptions opt) : opt_(opt), rng_(opt.seed) {
  m_.max_depth_ = 0;
}

int32_t ProbabilisticFitter::intern(const std::string& name) {
  auto [it, inserted] = ids_.emplace(name, static_cast<int32_t>(m_.names_.size()));
  if (inserted) m_.names_.push_back(name);
  return it->second;
}

void ProbabilisticFitter::offer(Reservoir& r, int64_t v) {
  ++r.seen;
  if (r.values.size() < opt_.reservoir) {
    r.values.push_back(v);
  } else if (opt_.reservoir > 0) {
    uint64_t j = rng_.next() % r.seen;
    if (j < opt_.reservoir) r.values[j] = v;
  }
}

void ProbabilisticFitter::add(const CallGraph& graph) {
  if (!is_valid(validate(graph))) {
    ++skipped_;
    return;
  }
  const CallGraph* gp = &graph;
  CallGraph sorted;
  if (!graph.is_canonical()) {
    sorted = graph;
    sorted.canonicalize();
    gp = &sorted;
  }
  const CallGraph& g = *gp;
  ++m_.fitted_graphs_;
  m_.max_depth_ = std::max(m_.max_depth_, std::min(g.depth(), opt_.max_depth_cap));
  m_.max_edges_ = std::max(m_.max_edges_, static_cast<int64_t>(g.num_edges()));
  auto [sit, inserted] = m_.service_index_.emplace(g.service, m_.services_.size());
  if (inserted) m_.services_.push_back(ProbabilisticModel::Service{g.service, {}});
  const size_t si = sit->second;
  m_.service_dist_.add(static_cast<int64_t>(si));

  GraphIndex ix = g.index();
  std::vector<size_t> order;
  for (size_t i = 0; i < g.edges.size(); ++i) {
    const Edge& e = g.edges[i];
    const int d = e.id.depth();
    const int t = static_cast<int>(e.type);
    const int32_t callee = intern(e.callee);
    const size_t nkids = ix.children[i].size();
    if (ix.parent[i] == GraphIndex::kNone) {  // the root "0" (valid graph)
      int64_t v = ProbabilisticModel::key2(callee, t);
      m_.services_[si].roots.add(v);
      m_.all_roots_.add(v);
    } else {
      const int pt = static_cast<int>(g.edges[ix.parent[i]].type);
      m_.child_type_[ProbabilisticModel::key2(d, pt)].add(t);
      m_.child_type_depth_[d].add(t);
      m_.callee_[ProbabilisticModel::key2(intern(e.caller), t)].add(callee);
    }
    m_.type_all_.add(t);
    m_.children_[ProbabilisticModel::key2(d, t)].add(static_cast<int64_t>(nkids));
    m_.children_depth_[d].add(static_cast<int64_t>(nkids));
    m_.callee_by_depth_[ProbabilisticModel::key2(d, t)].add(callee);
    m_.callee_by_type_[t].add(callee);
    const int64_t rt = std::max<int64_t>(0, e.duration_ms());
    offer(rt_[ProbabilisticModel::key2(d, t)], rt);
    offer(rt_type_[t], rt);
    offer(rt_all_, rt);
    if (nkids >= 2) {
      ++layers_multi_;
      order = ix.children[i];
      std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return std::pair(g.edges[a].start_ms, g.edges[a].finish_ms) <
               std::pair(g.edges[b].start_ms, g.edges[b].finish_ms);
      });
      bool seq = true;
      for (size_t k = 1; k < order.size() && seq; ++k)
        seq = g.edges[order[k]].start_ms >= g.edges[order[k - 1]].finish_ms;
      if (seq) ++layers_sequential_;
    }
  }
}

ProbabilisticModel ProbabilisticFitter::finish() {
  ProbabilisticModel m = std::move(m_);
  m_ = ProbabilisticModel();
  if (m.max_depth_ < 1) m.max_depth_ = 1;
  m.p_sequential_ =
      layers_multi_ ? static_cast<double>(layers_sequential_) / static_cast<double>(layers_multi_)
                    : 0.5;
  for (auto& s : m.services_) s.roots.freeze();
  m.service_dist_.freeze();
  m.all_roots_.freeze();
  for (auto* mp : {&m.children_, &m.children_depth_, &m.child_type_, &m.child_type_depth_,
                   &m.callee_, &m.callee_by_depth_, &m.callee_by_type_})
    for (auto& [k, c] : *mp) c.freeze();
  m.type_all_.freeze();
  for (auto& [k, r] : rt_) m.rt_[k] = std::move(r.values);
  for (auto& [k, r] : rt_type_) m.rt_type_[k] = std::move(r.values);
  m.rt_all_ = std::move(rt_all_.values);
  rt_.clear();
  rt_type_.clear();
  rt_all_ = {};
  ids_.clear();
  return m;
}

ProbabilisticModel fit_probabilistic(const std::vector<CallGraph>& graphs,
                                     ProbabilisticOptions opt) {
  ProbabilisticFitter f(opt);
  for (const CallGraph& g : graphs) f.add(g);
  return f.finish();
}

}  // namespace tracelm
