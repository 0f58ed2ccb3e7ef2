#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "generate/sampler.h"

namespace tracelm {
namespace {

Candidates cands(std::vector<float> l) { return Candidates::from_logits(l.data(), l.size()); }

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
  mask_sampler([](int32_t id) { return id != 1; })->apply(e);
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
  // A mask that bans everything: no token.
  SamplerChain banned(1, false);
  banned.add(mask_sampler([](int32_t) { return false; }));
  Candidates d = cands(l);
  EXPECT_EQ(banned.pick(d), -1);
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
