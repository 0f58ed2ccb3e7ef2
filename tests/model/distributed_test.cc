// Data-parallel training and generation across processes (train/distributed.h,
// generate/sharded.h): the `tracelm` binary run as 1, 2 or 3 ranks with Gloo
// on this machine, tiny models.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "encode/recursive.h"
#include "eval/provenance.h"
#include "generate/sharded.h"
#include "model/llama.h"
#include "sample/synthetic_raw.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"

namespace tracelm {
namespace {

// A corpus, a tokenizer and a tiny random base model, once for the suite.
class DataParallel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    testing::write_file(dir_->file("s.csv"), synthetic_raw_csv({}));
    auto r = testing::run_tracelm("ingest " + dir_->file("s.csv") + " -o " + dir_->file("c.jsonl") +
                                  " --val-fraction 0.2 -q");
    ASSERT_EQ(r.status, 0) << r.out;
    r = testing::run_tracelm("encode " + dir_->file("c.jsonl") + " --format recursive -o " +
                             dir_->file("t.txt"));
    ASSERT_EQ(r.status, 0) << r.out;
    TrainOptions o;
    o.vocab_size = 400;
    train_tokenizer(dir_->file("t.txt"), dir_->file("tok.model"), o);
    Tokenizer tok = Tokenizer::load(dir_->file("tok.model"));
    LlamaConfig c = preset_config("tiny", tok.vocab_size(), 128);
    save_llama(init_llama(c, 11), dir_->file("base"));
    std::filesystem::copy_file(dir_->file("tok.model"), dir_->file("base/tokenizer.model"));
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string file(const std::string& f) { return dir_->file(f); }
  // `tracelm train` on the corpus with the given extra options.
  static testing::RunResult train(const std::string& out, const std::string& extra) {
    return testing::run_tracelm("train --corpus " + file("c.jsonl") + " --val " +
                                file("c.val.jsonl") + " -o " + out +
                                " --batch 8 --micro-batch 2 --context 128 --log-every 1 "
                                "--eval-every 3 --save-every 0 --lr 3e-3 --warmup 2 -q " +
                                extra);
  }
  static testing::TempDir* dir_;
};
testing::TempDir* DataParallel::dir_ = nullptr;

std::vector<nlohmann::json> metrics(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::string text = testing::read_file(out + "/metrics.jsonl");
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    v.push_back(nlohmann::json::parse(text.substr(pos, nl - pos)));
    pos = nl + 1;
  }
  return v;
}

// Same steps, same losses (and validation losses, gradient norms) within
// floating-point tolerance.
void expect_same_run(const std::string& a, const std::string& b, int64_t from_step = 1) {
  std::map<int64_t, nlohmann::json> ma, mb;
  for (auto& m : metrics(a))
    if (m.contains("loss")) ma[m["step"].get<int64_t>()] = m;
  for (auto& m : metrics(b))
    if (m.contains("loss")) mb[m["step"].get<int64_t>()] = m;
  int compared = 0;
  for (auto& [step, m] : ma) {
    if (step < from_step) continue;
    ASSERT_TRUE(mb.count(step)) << "step " << step << " missing in " << b;
    for (const char* k : {"loss", "grad_norm", "val_loss"}) {
      if (!m.contains(k)) continue;
      double x = m[k].get<double>(), y = mb[step][k].get<double>();
      EXPECT_NEAR(x, y, 1e-4 * std::max(1.0, std::abs(x))) << k << " at step " << step;
    }
    if (from_step == 1) EXPECT_EQ(m["tokens"], mb[step]["tokens"]);  // (counted per process)
    ++compared;
  }
  EXPECT_GE(compared, 3);
  EXPECT_EQ(ma.rbegin()->first, mb.rbegin()->first);
}

TEST_F(DataParallel, TwoRanksGiveTheLossesOfOneProcessOnTheSameGlobalBatch) {
  testing::TempDir tmp;
  std::string pre = " --preset tiny --tokenizer " + file("tok.model") + " --max-steps 6";
  auto one = train(tmp.file("one"), pre);
  ASSERT_EQ(one.status, 0) << one.out;
  auto two = train(tmp.file("two"), pre + " --nproc 2");
  ASSERT_EQ(two.status, 0) << two.out;
  expect_same_run(tmp.file("one"), tmp.file("two"));
  // The losses moved (the test compares training, not a constant).
  auto m = metrics(tmp.file("one"));
  EXPECT_NE(m.front()["loss"], m[5]["loss"]);
  // Rank 0 alone wrote the model and its files; rank 1 did not report.
  for (const char* f : {"model.safetensors", "tokenizer.model", "stats.json"})
    EXPECT_TRUE(testing::exists(tmp.file("two/") + f)) << f;
  EXPECT_EQ(two.out.find("train: 6 steps"), two.out.rfind("train: 6 steps")) << two.out;
}

TEST_F(DataParallel, LoraTwoRanksGiveTheLossesOfOneProcess) {
  testing::TempDir tmp;
  std::string pre = " --base " + file("base") + " --lora-dropout 0 --max-steps 5";
  auto one = train(tmp.file("one"), pre);
  ASSERT_EQ(one.status, 0) << one.out;
  auto two = train(tmp.file("two"), pre + " --nproc 2");
  ASSERT_EQ(two.status, 0) << two.out;
  expect_same_run(tmp.file("one"), tmp.file("two"));
  EXPECT_TRUE(testing::exists(tmp.file("two/adapter_model.safetensors")));
}

TEST_F(DataParallel, ResumesWithAnotherNumberOfRanks) {
  testing::TempDir tmp;
  std::string pre = " --preset tiny --tokenizer " + file("tok.model") + " --max-steps 8";
  auto ref = train(tmp.file("ref"), pre);
  ASSERT_EQ(ref.status, 0) << ref.out;
  // Two ranks stop at step 4 (as a killed job would, after its checkpoint);
  // one process continues.
  auto first = train(tmp.file("run"), pre + " --nproc 2 --stop-after 4");
  ASSERT_EQ(first.status, 0) << first.out;
  auto rest = train(tmp.file("run"), pre + " --resume");
  ASSERT_EQ(rest.status, 0) << rest.out;
  expect_same_run(tmp.file("ref"), tmp.file("run"), 5);
}

// Starts `tracelm ARGS` with the launcher environment of one rank; returns its pid.
pid_t start_rank(int rank, int world, int port, const std::string& args, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("RANK", std::to_string(rank).c_str(), 1);
    ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
    ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
    ::setenv("MASTER_ADDR", "127.0.0.1", 1);
    ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
    std::string cmd = "exec " + std::string(TRACELM_BINARY) + " " + args + " > " + log + " 2>&1";
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

// Waits for pid up to `seconds`; the exit status, or -1 on timeout.
int wait_for(pid_t pid, double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid)
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

// A TCP port free right now (the kernel's choice for port 0): tests that
// run at the same time (ctest -j) do not collide, as ports derived from
// the pid could.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof a;
  int port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) ::close(fd);
  return port;
}

bool wait_for_file(const std::string& path, double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (testing::exists(path) && !testing::read_file(path).empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST_F(DataParallel, AKilledOrHungRankStopsTheOthersWithAnError) {
  testing::TempDir tmp;
  std::string args = "train --corpus " + file("c.jsonl") + " --preset tiny --tokenizer " +
                     file("tok.model") +
                     " --max-steps 100000 --batch 4 --micro-batch 2 --context 64 --log-every 1 "
                     "--save-every 0 --eval-every 0 -q --dist-timeout 3 -o " +
                     tmp.file("out");
  for (int sig : {SIGKILL, SIGSTOP}) {
    const int port = free_port();
    ASSERT_GT(port, 0);
    std::filesystem::remove_all(tmp.file("out"));
    pid_t r0 = start_rank(0, 2, port, args, tmp.file("r0.log"));
    pid_t r1 = start_rank(1, 2, port, args, tmp.file("r1.log"));
    ASSERT_TRUE(wait_for_file(tmp.file("out/metrics.jsonl"), 60)) << "training did not start";
    ::kill(r1, sig);  // died, or hangs
    int status = wait_for(r0, 30);
    ::kill(r1, SIGKILL);
    wait_for(r1, 5);
    if (status == -1) ::kill(r0, SIGKILL);
    ASSERT_NE(status, -1) << "rank 0 hangs after rank 1 got signal " << sig;
    EXPECT_NE(status, 0);
    std::string log = testing::read_file(tmp.file("r0.log"));
    EXPECT_NE(log.find("data parallel: "), std::string::npos) << log;
    EXPECT_NE(log.find("on rank 0 of 2"), std::string::npos) << log;
  }
  // The local launcher names the rank that died and stops the others.
  std::filesystem::remove_all(tmp.file("out"));
  pid_t launcher = ::fork();
  if (launcher == 0) {
    std::string cmd = "exec " + std::string(TRACELM_BINARY) + " " + args + " --nproc 2 > " +
                      tmp.file("l.log") + " 2>&1";
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_TRUE(wait_for_file(tmp.file("out/metrics.jsonl"), 60));
  // Rank 1 is the launcher's second child.
  std::string children = testing::read_file("/proc/" + std::to_string(launcher) + "/task/" +
                                            std::to_string(launcher) + "/children");
  std::istringstream in(children);
  pid_t c0 = 0, c1 = 0;
  in >> c0 >> c1;
  ASSERT_GT(c1, 0) << children;
  ::kill(c1, SIGKILL);
  int status = wait_for(launcher, 30);
  if (status == -1) ::kill(launcher, SIGKILL);
  ASSERT_NE(status, -1);
  EXPECT_NE(status, 0);
  std::string log = testing::read_file(tmp.file("l.log"));
  EXPECT_NE(log.find("rank 1 of 2"), std::string::npos) << log;
  EXPECT_NE(log.find("killed by signal 9"), std::string::npos) << log;
}

// Sets environment variables for its lifetime.
class ScopedEnv {
 public:
  explicit ScopedEnv(std::vector<std::pair<std::string, std::string>> vars) : vars_(vars) {
    for (auto& [k, v] : vars_) ::setenv(k.c_str(), v.c_str(), 1);
  }
  ~ScopedEnv() {
    for (auto& [k, v] : vars_) ::unsetenv(k.c_str());
  }

 private:
  std::vector<std::pair<std::string, std::string>> vars_;
};

TEST(DistEnv, ReadsTheLauncherEnvironmentAndNamesWhatIsWrong) {
  EXPECT_FALSE(DistEnv::from_environment().has_value());  // no WORLD_SIZE: alone
  {
    ScopedEnv e({{"WORLD_SIZE", "4"},
                 {"RANK", "2"},
                 {"LOCAL_RANK", "0"},
                 {"MASTER_ADDR", "10.0.0.1"},
                 {"MASTER_PORT", "29500"}});
    std::optional<DistEnv> d = DistEnv::from_environment();
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->rank, 2);
    EXPECT_EQ(d->world_size, 4);
    EXPECT_EQ(d->local_rank, 0);
    EXPECT_EQ(d->master_addr, "10.0.0.1");
    EXPECT_EQ(d->master_port, 29500);
  }
  auto error_of = [](std::vector<std::pair<std::string, std::string>> vars) {
    ScopedEnv e(std::move(vars));
    try {
      DistEnv::from_environment();
    } catch (const std::invalid_argument& ex) {
      return std::string(ex.what());
    }
    return std::string();
  };
  EXPECT_NE(
      error_of({{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}})
          .find("RANK=2 is not an integer in [0, 1]"),
      std::string::npos);
  EXPECT_NE(error_of({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "1"}})
                .find("MASTER_ADDR is not set"),
            std::string::npos);
  EXPECT_NE(
      error_of({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "http"}})
          .find("MASTER_PORT=http"),
      std::string::npos);
}

TEST(Sharded, BlocksCoverTheRequestsInOrder) {
  for (size_t n : {0, 1, 7, 12}) {
    for (int w : {1, 2, 3, 5}) {
      size_t next = 0;
      for (int r = 0; r < w; ++r) {
        auto [b, e] = request_block(n, r, w);
        EXPECT_EQ(b, next);
        EXPECT_LE(e - b, n / static_cast<size_t>(w) + 1);
        next = e;
      }
      EXPECT_EQ(next, n);
    }
  }
}

TEST_F(DataParallel, GenerationWithOneAndThreeProcessesWritesTheSameGraphs) {
  testing::TempDir tmp;
  // A model that completes graphs (40 steps of the tiny preset).
  auto t =
      testing::run_tracelm("train --corpus " + file("c.jsonl") + " --preset tiny --tokenizer " +
                           file("tok.model") + " -o " + tmp.file("m") +
                           " --max-steps 40 --batch 8 --micro-batch 4 --context 128 --lr 3e-3 "
                           "--warmup 2 --eval-every 0 -q");
  ASSERT_EQ(t.status, 0) << t.out;
  std::string gen = "generate --model " + tmp.file("m") + " -n 10 --seed 5 -q";
  auto one = testing::run_tracelm(gen + " -o " + tmp.file("one.jsonl"));
  ASSERT_EQ(one.status, 0) << one.out;
  auto three = testing::run_tracelm(gen + " --nproc 3 -o " + tmp.file("three.jsonl"));
  ASSERT_EQ(three.status, 0) << three.out;
  std::string a = testing::read_file(tmp.file("one.jsonl"));
  EXPECT_FALSE(a.empty()) << one.out;
  EXPECT_EQ(a, testing::read_file(tmp.file("three.jsonl")));
  // The summary line is rank 0's, once.
  EXPECT_NE(three.out.find("10 requested"), std::string::npos) << three.out;
  // The set says what decided it.
  std::optional<SetProvenance> p = read_provenance(tmp.file("one.jsonl"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->protocol, "open");
  EXPECT_TRUE(std::find(p->settings.begin(), p->settings.end(),
                        std::pair<std::string, std::string>{"known_types", "on"}) !=
              p->settings.end());
}

}  // namespace
}  // namespace tracelm
