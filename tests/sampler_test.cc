#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "generate/sampler.h"

namespace tracelm {
namespace {

Candidates cands(std::vector<float> l) { return Candidates::from_logits(l.data(), l.size()); }

// A grammar that bans some ids and counts how it is used.
class Ban : public Sampler {
 public:
  explicit Ban(std::function<bool(int32_t)> banned) : banned_(std::move(banned)) {}
  void apply(Candidates& c) override {
    ++applied;
    largest = std::max(largest, c.size());
    std::vector<size_t> idx;
    for (size_t i = 0; i < c.size(); ++i)
      if (!banned_(c.ids[i])) idx.push_back(i);
    c.keep(idx);
  }
  void accept(int32_t t) override { accepted.push_back(t); }
  std::unique_ptr<Sampler> clone() const override { return std::make_unique<Ban>(banned_); }
  std::string name() const override { return "ban"; }
  int applied = 0;
  size_t largest = 0;
  std::vector<int32_t> accepted;

 private:
  std::function<bool(int32_t)> banned_;
};

TEST(Sampler, GreedyPicksTheArgmax) {
  auto chain = SamplerChain::from_params({0.0, 50, 1.0, 1});
  Candidates c = cands({0.1f, 2.0f, -1.0f, 1.9f});
  EXPECT_EQ(chain->pick(c), 1);
}

TEST(Sampler, TopKAndTopPNarrowTheCandidates) {
  Candidates c = cands({1, 5, 3, 4, 2});
  top_k_sampler(2)->apply(c);
  EXPECT_EQ(c.ids, (std::vector<int32_t>{1, 3}));
  // Probabilities of logits {log 0.5, log 0.3, log 0.2}: top-p 0.7 keeps two.
  Candidates d = cands({std::log(0.2f), std::log(0.5f), std::log(0.3f)});
  top_p_sampler(0.7)->apply(d);
  EXPECT_EQ(d.ids, (std::vector<int32_t>{1, 2}));
  Candidates e = cands({0, 0, 0});
  Ban([](int32_t id) { return id == 1; }).apply(e);
  EXPECT_EQ(e.ids, (std::vector<int32_t>{0, 2}));
  EXPECT_THROW(top_k_sampler(0), std::invalid_argument);
  EXPECT_THROW(temperature_sampler(0), std::invalid_argument);
}

TEST(Sampler, DrawsFollowTheSoftmaxAndAreSeeded) {
  std::vector<float> l = {std::log(0.6f), std::log(0.3f), std::log(0.1f)};
  auto chain = SamplerChain::from_params({1.0, 0, 1.0, 42});
  std::map<int32_t, int> n;
  std::vector<int32_t> first;
  for (int i = 0; i < 20000; ++i) {
    Candidates c = cands(l);
    int32_t t = chain->pick(c);
    ++n[t];
    if (i < 50) first.push_back(t);
  }
  EXPECT_NEAR(n[0] / 20000.0, 0.6, 0.02);
  EXPECT_NEAR(n[2] / 20000.0, 0.1, 0.01);
  // Same seed, same draws; a reset starts over.
  auto again = SamplerChain::from_params({1.0, 0, 1.0, 42});
  std::vector<int32_t> second;
  for (int i = 0; i < 50; ++i) {
    Candidates c = cands(l);
    second.push_back(again->pick(c));
  }
  EXPECT_EQ(first, second);
  again->reset();
  Candidates c = cands(l);
  EXPECT_EQ(again->pick(c), first[0]);
  // A grammar that bans everything: no token.
  SamplerChain banned(1, false);
  banned.set_grammar(std::make_unique<Ban>([](int32_t) { return true; }));
  EXPECT_EQ(banned.sample(l.data(), l.size()), -1);
}

TEST(Sampler, GrammarChecksTheDrawFirstAndMasksOnlyWhenItFails) {
  std::vector<float> l = {0.1f, 3.0f, 0.2f, 2.9f};
  // Greedy draws 1; a grammar that allows it is asked about that one token.
  SamplerChain ok(1, true);
  auto* allow = new Ban([](int32_t id) { return id == 0; });
  ok.set_grammar(std::unique_ptr<Sampler>(allow));
  bool redrawn = false;
  EXPECT_EQ(ok.sample(l.data(), l.size(), &redrawn), 1);
  EXPECT_FALSE(redrawn);
  EXPECT_EQ(allow->applied, 1);
  EXPECT_EQ(allow->largest, 1u);
  EXPECT_EQ(allow->accepted, (std::vector<int32_t>{1}));
  // A grammar that bans 1: masks the whole vocabulary once and redraws 3.
  SamplerChain masked(1, true);
  auto* ban = new Ban([](int32_t id) { return id == 1; });
  masked.set_grammar(std::unique_ptr<Sampler>(ban));
  EXPECT_EQ(masked.sample(l.data(), l.size(), &redrawn), 3);
  EXPECT_TRUE(redrawn);
  EXPECT_EQ(ban->applied, 2);
  EXPECT_EQ(ban->largest, l.size());
  EXPECT_EQ(ban->accepted, (std::vector<int32_t>{3}));
  // Seeded draws through a grammar never return a banned token.
  auto chain = SamplerChain::from_params({1.0, 0, 1.0, 7});
  chain->set_grammar(std::make_unique<Ban>([](int32_t id) { return id % 2 == 1; }));
  for (int i = 0; i < 500; ++i) EXPECT_EQ(chain->sample(l.data(), l.size()) % 2, 0);
}

TEST(Sampler, LowTemperatureApproachesGreedy) {
  auto chain = SamplerChain::from_params({0.01, 0, 1.0, 3});
  for (int i = 0; i < 100; ++i) {
    Candidates c = cands({1.0f, 1.5f, 0.5f});
    EXPECT_EQ(chain->pick(c), 1);
  }
}

}  // namespace
}  // namespace tracelm
