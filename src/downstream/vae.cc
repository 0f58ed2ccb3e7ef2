#include "downstream/vae.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <numeric>
#include <random>
#include <stdexcept>

namespace tracelm::downstream {

std::optional<VaeGraph> to_vae_graph(const CallGraph& g, size_t max_nodes) {
  if (g.edges.empty()) return std::nullopt;
  GraphIndex ix = g.index();
  if (ix.roots.empty()) return std::nullopt;
  VaeGraph v;
  auto key = [&](size_t e) {
    return g.edges[e].callee + "/" + std::string(call_type_name(g.edges[e].type));
  };
  // A queue of groups: the edges merged into one node, and the node's parent.
  struct Group {
    std::vector<size_t> edges;
    int parent;
  };
  std::deque<Group> queue;
  auto push_children = [&](const std::vector<size_t>& kids, int parent) {
    std::map<std::string, size_t> slot;  // type -> position in this batch of groups
    std::vector<Group> groups;
    for (size_t c : kids) {  // id order: groups appear in order of their first call
      auto [it, fresh] = slot.emplace(key(c), groups.size());
      if (fresh) groups.push_back({{}, parent});
      groups[it->second].edges.push_back(c);
    }
    for (Group& gr : groups) queue.push_back(std::move(gr));
  };
  push_children(ix.roots, -1);
  while (!queue.empty()) {
    Group gr = std::move(queue.front());
    queue.pop_front();
    int id = static_cast<int>(v.type.size());
    if (v.type.size() >= max_nodes) return std::nullopt;
    v.type.push_back(key(gr.edges[0]));
    v.parent.push_back(gr.parent);
    double sum = 0;
    for (size_t e : gr.edges) sum += static_cast<double>(g.edges[e].duration_ms());
    v.latency.push_back(sum / static_cast<double>(gr.edges.size()));
    std::vector<size_t> kids;
    for (size_t e : gr.edges) kids.insert(kids.end(), ix.children[e].begin(), ix.children[e].end());
    std::sort(kids.begin(), kids.end());  // edge indices are in canonical (id) order
    push_children(kids, id);
  }
  if (v.size() < 2) return std::nullopt;
  return v;
}

VaeConfig VaeConfig::published() {
  VaeConfig c;
  c.embed = 40;
  c.hidden = 500;
  c.layers = 4;
  c.z = 10;
  c.z2 = 10;
  c.epochs = 40;
  c.latency_epochs = 20;
  return c;
}

namespace {

namespace nn = torch::nn;

// Graph convolution layers over a dense normalised adjacency.
struct GcnImpl : nn::Module {
  std::vector<nn::Linear> lins;
  GcnImpl(int64_t in, int64_t hidden, int64_t layers) {
    for (int64_t i = 0; i < layers; ++i)
      lins.push_back(
          register_module("lin" + std::to_string(i), nn::Linear(i ? hidden : in, hidden)));
  }
  // x: [B, N, in], ahat: [B, N, N], mask: [B, N] -> [B, N, hidden]
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& ahat, const torch::Tensor& mask) {
    for (auto& l : lins)
      x = torch::leaky_relu(torch::bmm(ahat, l->forward(x)), 0.2) * mask.unsqueeze(-1);
    return x;
  }
};
TORCH_MODULE(Gcn);

// Masked mean over nodes: [B, N, H] -> [B, H]
torch::Tensor pool(const torch::Tensor& h, const torch::Tensor& mask) {
  return (h * mask.unsqueeze(-1)).sum(1) / mask.sum(1, true).clamp_min(1);
}

constexpr double kLog2Pi = 1.8378770664093453;

// log N(x; mu, exp(lv / 2)) summed over the last dimension: [..., D] -> [...]
torch::Tensor normal_logp(const torch::Tensor& x, const torch::Tensor& mu,
                          const torch::Tensor& lv) {
  return (-0.5 * ((x - mu).pow(2) * torch::exp(-lv) + lv + kLog2Pi)).sum(-1);
}

struct Batch {
  torch::Tensor types;  // [B, N] int64, 0 = unknown type (or padding)
  torch::Tensor mask;   // [B, N] float, 1 on real nodes
  torch::Tensor adj;    // [B, N, N] float, adj[b][parent][child] = 1
  torch::Tensor ahat;   // [B, N, N] float, D^-1/2 (A + A^T + I) D^-1/2 on real nodes
  torch::Tensor lat;    // [B, N] float, normalised latency
  torch::Tensor count;  // [B] int64, nodes - 2
};

Batch select(const Batch& all, const torch::Tensor& idx) {
  return {all.types.index_select(0, idx), all.mask.index_select(0, idx),
          all.adj.index_select(0, idx),   all.ahat.index_select(0, idx),
          all.lat.index_select(0, idx),   all.count.index_select(0, idx)};
}

}  // namespace

struct GraphVae::Impl : nn::Module {
  VaeConfig cfg;
  std::unordered_map<std::string, int64_t> ids;  // type -> 1..V
  std::vector<double> mean, sd;                  // per id; [0] = global (unknown types)
  int64_t vocab = 1;                             // V + 1

  nn::Embedding embed{nullptr};
  Gcn enc_s{nullptr}, enc_l{nullptr}, dec_l{nullptr};
  nn::Linear mu_z{nullptr}, lv_z{nullptr}, mu_z2{nullptr}, lv_z2{nullptr};
  nn::Sequential dec_s{nullptr}, prior_z2{nullptr};
  nn::Linear count_head{nullptr}, type_head{nullptr}, adj_head{nullptr}, lat_head{nullptr};

  void build() {
    const int64_t E = cfg.embed, H = cfg.hidden, L = cfg.layers, N = cfg.max_nodes;
    embed = register_module("embed", nn::Embedding(vocab, E));
    enc_s = register_module("enc_s", Gcn(E, H, L));
    mu_z = register_module("mu_z", nn::Linear(H, cfg.z));
    lv_z = register_module("lv_z", nn::Linear(H, cfg.z));
    dec_s = register_module("dec_s", nn::Sequential(nn::Linear(cfg.z, H), nn::LeakyReLU(),
                                                    nn::Linear(H, H), nn::LeakyReLU()));
    count_head = register_module("count_head", nn::Linear(H, N - 1));
    type_head = register_module("type_head", nn::Linear(H, N * vocab));
    adj_head = register_module("adj_head", nn::Linear(H, N * N));
    enc_l = register_module("enc_l", Gcn(E + 1, H, L));
    mu_z2 = register_module("mu_z2", nn::Linear(H, cfg.z2));
    lv_z2 = register_module("lv_z2", nn::Linear(H, cfg.z2));
    prior_z2 = register_module("prior_z2", nn::Sequential(nn::Linear(cfg.z, H), nn::LeakyReLU(),
                                                          nn::Linear(H, 2 * cfg.z2)));
    dec_l = register_module("dec_l", Gcn(E + cfg.z2, H, L));
    lat_head = register_module("lat_head", nn::Linear(H, 2));
  }

  std::vector<torch::Tensor> latency_parameters() {
    std::vector<torch::Tensor> p;
    for (nn::Module* m : std::initializer_list<nn::Module*>{
             enc_l.get(), mu_z2.get(), lv_z2.get(), prior_z2.get(), dec_l.get(), lat_head.get()})
      for (auto& t : m->parameters()) p.push_back(t);
    return p;
  }

  Batch tensors(const std::vector<VaeGraph>& gs) const {
    const int64_t B = static_cast<int64_t>(gs.size()), N = cfg.max_nodes;
    Batch b;
    b.types = torch::zeros({B, N}, torch::kInt64);
    b.mask = torch::zeros({B, N});
    b.adj = torch::zeros({B, N, N});
    b.lat = torch::zeros({B, N});
    b.count = torch::zeros({B}, torch::kInt64);
    auto ty = b.types.accessor<int64_t, 2>();
    auto ma = b.mask.accessor<float, 2>();
    auto ad = b.adj.accessor<float, 3>();
    auto la = b.lat.accessor<float, 2>();
    auto co = b.count.accessor<int64_t, 1>();
    for (int64_t i = 0; i < B; ++i) {
      const VaeGraph& g = gs[static_cast<size_t>(i)];
      if (static_cast<int64_t>(g.size()) > N || g.size() < 2)
        throw std::invalid_argument("GraphVae: a graph with " + std::to_string(g.size()) +
                                    " nodes (2.." + std::to_string(N) + " expected)");
      co[i] = static_cast<int64_t>(g.size()) - 2;
      for (size_t k = 0; k < g.size(); ++k) {
        auto it = ids.find(g.type[k]);
        int64_t id = it == ids.end() ? 0 : it->second;
        ty[i][static_cast<int64_t>(k)] = id;
        ma[i][static_cast<int64_t>(k)] = 1;
        la[i][static_cast<int64_t>(k)] = static_cast<float>(
            (g.latency[k] - mean[static_cast<size_t>(id)]) / sd[static_cast<size_t>(id)]);
        if (g.parent[k] >= 0) ad[i][g.parent[k]][static_cast<int64_t>(k)] = 1;
      }
    }
    torch::Tensor a = b.adj + b.adj.transpose(1, 2) + torch::diag_embed(b.mask);
    torch::Tensor dinv = a.sum(-1).clamp_min(1).pow(-0.5);  // [B, N]
    b.ahat = dinv.unsqueeze(-1) * a * dinv.unsqueeze(1);
    return b;
  }

  struct Posterior {
    torch::Tensor mu, lv, mu2, lv2;  // [B, z], [B, z], [B, z2], [B, z2]
  };
  Posterior encode(const Batch& b) {
    torch::Tensor e = embed->forward(b.types);  // [B, N, E]
    torch::Tensor hs = pool(enc_s->forward(e, b.ahat, b.mask), b.mask);
    torch::Tensor hl =
        pool(enc_l->forward(torch::cat({e, b.lat.unsqueeze(-1)}, -1), b.ahat, b.mask), b.mask);
    return {mu_z->forward(hs), lv_z->forward(hs).clamp(-10, 10), mu_z2->forward(hl),
            lv_z2->forward(hl).clamp(-10, 10)};
  }

  // log p(structure | z) + log p(latency | z2, structure): [B]
  torch::Tensor log_likelihood(const Batch& b, const torch::Tensor& z, const torch::Tensor& z2) {
    const int64_t B = b.types.size(0), N = cfg.max_nodes;
    torch::Tensor h = dec_s->forward(z);  // [B, H]
    torch::Tensor lp_count =
        torch::log_softmax(count_head->forward(h), -1).gather(1, b.count.unsqueeze(1)).squeeze(1);
    torch::Tensor type_logits = type_head->forward(h).view({B, N, vocab});
    torch::Tensor lp_types =
        (torch::log_softmax(type_logits, -1).gather(2, b.types.unsqueeze(-1)).squeeze(-1) * b.mask)
            .sum(1);
    torch::Tensor adj_logits = adj_head->forward(h).view({B, N, N});
    torch::Tensor upper = torch::triu(torch::ones({N, N}), 1).unsqueeze(0) * b.mask.unsqueeze(-1) *
                          b.mask.unsqueeze(1);  // [B, N, N]
    torch::Tensor lp_adj = -(torch::binary_cross_entropy_with_logits(adj_logits, b.adj, {}, {},
                                                                     torch::Reduction::None) *
                             upper)
                                .sum({1, 2});
    torch::Tensor e = embed->forward(b.types);
    torch::Tensor zz = z2.unsqueeze(1).expand({B, N, cfg.z2});
    torch::Tensor out = lat_head->forward(dec_l->forward(torch::cat({e, zz}, -1), b.ahat, b.mask));
    torch::Tensor mean_l = out.select(-1, 0), logstd = out.select(-1, 1).clamp(-4, 4);  // [B, N]
    torch::Tensor lp_lat =
        ((-0.5 * ((b.lat - mean_l) * torch::exp(-logstd)).pow(2) - logstd - 0.5 * kLog2Pi) * b.mask)
            .sum(1);
    return lp_count + lp_types + lp_adj + lp_lat;
  }

  std::pair<torch::Tensor, torch::Tensor> prior2(const torch::Tensor& z) {
    torch::Tensor p = prior_z2->forward(z);
    return {p.narrow(-1, 0, cfg.z2), p.narrow(-1, cfg.z2, cfg.z2).clamp(-10, 10)};
  }

  // Negative ELBO per graph: [B]
  torch::Tensor neg_elbo(const Batch& b) {
    Posterior q = encode(b);
    torch::Tensor z = q.mu + torch::exp(0.5 * q.lv) * torch::randn_like(q.mu);
    torch::Tensor z2 = q.mu2 + torch::exp(0.5 * q.lv2) * torch::randn_like(q.mu2);
    auto [mp, lvp] = prior2(z);
    torch::Tensor kl_z = -0.5 * (1 + q.lv - q.mu.pow(2) - torch::exp(q.lv)).sum(-1);
    torch::Tensor kl_z2 =
        0.5 *
        (lvp - q.lv2 + (torch::exp(q.lv2) + (q.mu2 - mp).pow(2)) * torch::exp(-lvp) - 1).sum(-1);
    return -log_likelihood(b, z, z2) + kl_z + kl_z2;
  }

  // -log p(G) by importance sampling: [B]
  torch::Tensor nll(const Batch& b, int k) {
    Posterior q = encode(b);
    std::vector<torch::Tensor> logw;
    for (int i = 0; i < k; ++i) {
      torch::Tensor z = q.mu + torch::exp(0.5 * q.lv) * torch::randn_like(q.mu);
      torch::Tensor z2 = q.mu2 + torch::exp(0.5 * q.lv2) * torch::randn_like(q.mu2);
      auto [mp, lvp] = prior2(z);
      logw.push_back(
          log_likelihood(b, z, z2) + normal_logp(z, torch::zeros_like(z), torch::zeros_like(z)) +
          normal_logp(z2, mp, lvp) - normal_logp(z, q.mu, q.lv) - normal_logp(z2, q.mu2, q.lv2));
    }
    torch::Tensor lw = torch::stack(logw);  // [K, B]
    return -(torch::logsumexp(lw, 0) - std::log(static_cast<double>(k)));
  }
};

GraphVae::GraphVae(VaeConfig cfg) : cfg_(cfg) {}
GraphVae::~GraphVae() = default;
GraphVae::GraphVae(GraphVae&&) noexcept = default;
GraphVae& GraphVae::operator=(GraphVae&&) noexcept = default;

void GraphVae::train(const std::vector<VaeGraph>& graphs, uint64_t seed) {
  if (graphs.empty()) throw std::invalid_argument("GraphVae::train: no training graph");
  torch::manual_seed(seed);
  impl_ = std::make_unique<Impl>();
  Impl& m = *impl_;
  m.cfg = cfg_;
  // Vocabulary (sorted, so ids do not depend on the order of the graphs) and
  // latency normalisation.
  std::map<std::string, std::vector<double>> by_type;
  std::vector<double> all;
  for (const VaeGraph& g : graphs)
    for (size_t k = 0; k < g.size(); ++k) {
      by_type[g.type[k]].push_back(g.latency[k]);
      all.push_back(g.latency[k]);
    }
  auto stats = [](const std::vector<double>& v) {
    double mu = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    double ss = 0;
    for (double x : v) ss += (x - mu) * (x - mu);
    double sd = v.size() > 1 ? std::sqrt(ss / static_cast<double>(v.size() - 1)) : 0;
    return std::pair<double, double>{mu, std::max(sd, 1.0)};
  };
  auto [gm, gs] = stats(all);
  m.mean = {gm};
  m.sd = {gs};
  for (const auto& [t, v] : by_type) {
    m.ids[t] = static_cast<int64_t>(m.mean.size());
    auto [mu, sd] = stats(v);
    m.mean.push_back(mu);
    m.sd.push_back(sd);
  }
  m.vocab = static_cast<int64_t>(m.mean.size());
  m.build();
  m.train();
  Batch data = m.tensors(graphs);
  const int64_t n = static_cast<int64_t>(graphs.size());
  std::mt19937_64 rng(seed ^ 0xBA7C4ULL);
  std::vector<int64_t> order(static_cast<size_t>(n));
  auto run_phase = [&](std::vector<torch::Tensor> params, int epochs) {
    torch::optim::Adam opt(params,
                           torch::optim::AdamOptions(cfg_.lr).weight_decay(cfg_.weight_decay));
    for (int ep = 0; ep < epochs; ++ep) {
      std::iota(order.begin(), order.end(), 0);
      for (size_t i = order.size(); i > 1; --i)
        std::swap(order[i - 1], order[static_cast<size_t>(rng() % i)]);
      double sum = 0;
      for (int64_t s = 0; s < n; s += cfg_.batch) {
        int64_t e = std::min(n, s + cfg_.batch);
        torch::Tensor idx = torch::from_blob(order.data() + s, {e - s}, torch::kInt64).clone();
        Batch b = select(data, idx);
        opt.zero_grad();
        torch::Tensor loss = m.neg_elbo(b).mean();
        loss.backward();
        torch::nn::utils::clip_grad_norm_(params, cfg_.clip_norm);
        opt.step();
        sum += loss.item<double>() * static_cast<double>(e - s);
      }
      last_loss_ = sum / static_cast<double>(n);
    }
  };
  run_phase(m.parameters(), cfg_.epochs);
  run_phase(m.latency_parameters(), cfg_.latency_epochs);
  m.eval();
}

std::vector<double> GraphVae::nll(const std::vector<VaeGraph>& graphs, int samples, uint64_t seed) {
  if (!impl_) throw std::logic_error("GraphVae::nll before train");
  std::vector<double> out;
  if (graphs.empty()) return out;
  torch::NoGradGuard ng;
  torch::manual_seed(seed);
  Batch data = impl_->tensors(graphs);
  const int64_t n = static_cast<int64_t>(graphs.size());
  for (int64_t s = 0; s < n; s += 256) {
    int64_t e = std::min(n, s + 256);
    torch::Tensor v =
        impl_->nll(select(data, torch::arange(s, e, torch::kInt64)), std::max(1, samples))
            .clamp_max(1e5)
            .contiguous();
    for (int64_t i = 0; i < e - s; ++i) out.push_back(v[i].item<double>());
  }
  return out;
}

}  // namespace tracelm::downstream
