#include "generate/constraint_sampler.h"

#include <chrono>

namespace tracelm {

namespace {

// Adds the seconds of its lifetime to *total (when total is set).
class Stopwatch {
 public:
  explicit Stopwatch(double* total) : total_(total) {
    if (total_) t0_ = std::chrono::steady_clock::now();
  }
  ~Stopwatch() {
    if (total_)
      *total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  double* total_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace

bool is_writable_piece(const PieceText& p) {
  return !p.text.empty() && p.kind != PieceText::Kind::kControl &&
         p.kind != PieceText::Kind::kUnknown && p.kind != PieceText::Kind::kUnused;
}

bool ConstraintSampler::allows(int32_t t) const {
  if (t < 0 || static_cast<size_t>(t) >= pieces_.size()) return false;
  const PieceText& p = pieces_[static_cast<size_t>(t)];
  return is_writable_piece(p) && unit_->accepts(p.text);
}

void ConstraintSampler::apply(Candidates& c) {
  Stopwatch sw(seconds_);
  if (c.size() == 1) {  // the check of a drawn token: no byte mask needed
    if (!allows(c.ids[0])) c.keep({});
    return;
  }
  // Most pieces fail on their first byte: test that before running the
  // automaton over the whole text.
  std::bitset<256> first = unit_->next_bytes();
  std::vector<size_t> keep;
  for (size_t i = 0; i < c.size(); ++i) {
    int32_t t = c.ids[i];
    if (t < 0 || static_cast<size_t>(t) >= pieces_.size()) continue;
    const PieceText& p = pieces_[static_cast<size_t>(t)];
    if (!is_writable_piece(p) || !first[static_cast<unsigned char>(p.text[0])]) continue;
    if (unit_->accepts(p.text)) keep.push_back(i);
  }
  c.keep(keep);
}

void ConstraintSampler::accept(int32_t token) {
  Stopwatch sw(seconds_);
  unit_->feed(pieces_[static_cast<size_t>(token)].text);
}

std::unique_ptr<Sampler> ConstraintSampler::clone() const {
  return std::make_unique<ConstraintSampler>(unit_->clone(), pieces_, seconds_);
}

}  // namespace tracelm
