#include "train/distributed.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#if TRACELM_WITH_GLOO
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1  // ProcessGroupGloo.hpp declares the class only with it
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace tracelm {

namespace {

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

int env_int(const char* name, int lo, int hi) {
  std::optional<std::string> v = env(name);
  if (!v) throw std::invalid_argument(fmt::format("data parallel: {} is not set", name));
  char* end = nullptr;
  long x = std::strtol(v->c_str(), &end, 10);
  if (*end != '\0' || x < lo || x > hi)
    throw std::invalid_argument(
        fmt::format("data parallel: {}={} is not an integer in [{}, {}]", name, *v, lo, hi));
  return static_cast<int>(x);
}

// The first line of an exception's text (c10::Error appends a backtrace).
std::string first_line(const std::exception& e) {
  std::string s = e.what();
  size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

}  // namespace

std::optional<DistEnv> DistEnv::from_environment() {
  if (!env("WORLD_SIZE")) return std::nullopt;
  DistEnv e;
  e.world_size = env_int("WORLD_SIZE", 1, 1 << 20);
  e.rank = env_int("RANK", 0, e.world_size - 1);
  e.local_rank = env("LOCAL_RANK") ? env_int("LOCAL_RANK", 0, 1 << 20) : e.rank;
  if (e.world_size > 1) {
    std::optional<std::string> addr = env("MASTER_ADDR");
    if (!addr) throw std::invalid_argument("data parallel: MASTER_ADDR is not set");
    e.master_addr = *addr;
    e.master_port = env_int("MASTER_PORT", 1, 65535);
  }
  return e;
}

#if TRACELM_WITH_GLOO

struct DataParallelGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
};

DataParallelGroup::DataParallelGroup(const DistEnv& e, std::chrono::milliseconds timeout)
    : env_(e), timeout_(timeout), impl_(std::make_unique<Impl>()) {
  try {
    // Under torchrun the elastic agent already hosts the store at
    // MASTER_PORT: every rank is a client, and keys live under the restart
    // attempt's prefix (as torch.distributed does).
    bool agent_store = env("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(e.master_port);
    so.isServer = e.rank == 0 && !agent_store;
    if (!agent_store) so.numWorkers = static_cast<size_t>(e.world_size);
    so.waitWorkers = !agent_store;
    so.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(e.master_addr, so);
    if (agent_store) {
      impl_->store = c10::make_intrusive<c10d::PrefixStore>(
          "/worker/attempt_" + env("TORCHELASTIC_RESTART_COUNT").value_or("0"), tcp);
    } else {
      impl_->store = tcp;
    }
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    if (std::optional<std::string> ifname = env("GLOO_SOCKET_IFNAME")) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(*ifname));
    } else if (e.master_addr == "127.0.0.1" || e.master_addr == "localhost") {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    impl_->pg =
        c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, e.rank, e.world_size, opts);
  } catch (const std::exception& ex) {
    throw std::runtime_error(fmt::format(
        "data parallel: rank {} of {} could not join the group at {}:{} within {} s: {}", e.rank,
        e.world_size, e.master_addr, e.master_port, timeout.count() / 1000.0, first_line(ex)));
  }
}

DataParallelGroup::~DataParallelGroup() = default;

namespace {

template <class F>
void guarded(const DistEnv& e, std::chrono::milliseconds timeout, const char* what, F&& f) {
  try {
    f();
  } catch (const std::exception& ex) {
    throw std::runtime_error(fmt::format(
        "data parallel: {} failed on rank {} of {} (a rank died, or did not answer within {} "
        "s): {}",
        what, e.rank, e.world_size, timeout.count() / 1000.0, first_line(ex)));
  }
}

// Applies `op` to `tensors` in buckets of one dtype and at most `max_bytes`,
// flattened into contiguous CPU tensors, and copies the results back.
void bucketed(std::vector<torch::Tensor>& tensors, size_t max_bytes,
              const std::function<void(torch::Tensor&)>& op) {
  torch::NoGradGuard ng;
  std::map<int, std::vector<size_t>> by_dtype;
  for (size_t i = 0; i < tensors.size(); ++i)
    by_dtype[static_cast<int>(tensors[i].scalar_type())].push_back(i);
  for (auto& [dt, idx] : by_dtype) {
    size_t at = 0;
    while (at < idx.size()) {
      std::vector<size_t> part;
      size_t bytes = 0;
      while (at < idx.size() && (part.empty() || bytes + tensors[idx[at]].nbytes() <= max_bytes)) {
        bytes += tensors[idx[at]].nbytes();
        part.push_back(idx[at++]);
      }
      std::vector<torch::Tensor> flat;
      for (size_t i : part) flat.push_back(tensors[i].detach().reshape({-1}).to(torch::kCPU));
      torch::Tensor bucket = torch::cat(flat).contiguous();  // (sum numel) on the CPU
      op(bucket);
      int64_t off = 0;
      for (size_t i : part) {
        int64_t n = tensors[i].numel();
        tensors[i].copy_(bucket.narrow(0, off, n).view(tensors[i].sizes()));
        off += n;
      }
    }
  }
}

}  // namespace

void DataParallelGroup::all_reduce_sum(std::vector<torch::Tensor>& tensors) {
  guarded(env_, timeout_, "all-reduce", [&] {
    bucketed(tensors, kBucketBytes, [&](torch::Tensor& b) {
      std::vector<at::Tensor> one = {b};
      impl_->pg->allreduce(one)->wait(timeout_);
    });
  });
}

void DataParallelGroup::broadcast(std::vector<torch::Tensor>& tensors, int root) {
  guarded(env_, timeout_, "broadcast", [&] {
    bucketed(tensors, kBucketBytes, [&](torch::Tensor& b) {
      std::vector<at::Tensor> one = {b};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      impl_->pg->broadcast(one, o)->wait(timeout_);
    });
  });
}

void DataParallelGroup::barrier() {
  guarded(env_, timeout_, "barrier", [&] { impl_->pg->barrier()->wait(timeout_); });
}

std::vector<std::string> DataParallelGroup::all_gather_bytes(const std::string& mine) {
  std::vector<std::string> out;
  int64_t round = gathers_++;
  guarded(env_, timeout_, "gather", [&] {
    std::string key = fmt::format("tracelm/gather/{}/", round);
    impl_->store->set(key + std::to_string(env_.rank),
                      std::vector<uint8_t>(mine.begin(), mine.end()));
    for (int r = 0; r < env_.world_size; ++r) {
      std::vector<uint8_t> v = impl_->store->get(key + std::to_string(r));
      out.emplace_back(v.begin(), v.end());
    }
  });
  barrier();  // nobody leaves (and stops the store on rank 0) before all have read
  return out;
}

#else  // built without Gloo

struct DataParallelGroup::Impl {};

DataParallelGroup::DataParallelGroup(const DistEnv& e, std::chrono::milliseconds timeout)
    : env_(e), timeout_(timeout) {
  throw std::runtime_error(
      "data parallel: this tracelm was built without Gloo (install libgloo-dev, the headers of "
      "the Gloo library libtorch uses, and rebuild); WORLD_SIZE=" +
      std::to_string(e.world_size));
}
DataParallelGroup::~DataParallelGroup() = default;
void DataParallelGroup::all_reduce_sum(std::vector<torch::Tensor>&) {}
void DataParallelGroup::broadcast(std::vector<torch::Tensor>&, int) {}
void DataParallelGroup::barrier() {}
std::vector<std::string> DataParallelGroup::all_gather_bytes(const std::string& mine) {
  return {mine};
}

#endif

namespace {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("--nproc: cannot open a socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("--nproc: cannot find a free port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// This program's arguments without --nproc N / --nproc=N.
std::vector<std::string> own_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string a; std::getline(in, a, '\0');) args.push_back(a);
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;
      continue;
    }
    if (args[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  return out;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return fmt::format("was killed by signal {} ({})", WTERMSIG(status),
                       strsignal(WTERMSIG(status)));
  return "stopped";
}

}  // namespace

int launch_local_ranks(const DistributedOptions& o) {
  if (o.nproc <= 1 || env("WORLD_SIZE")) return -1;
  std::vector<std::string> args = own_arguments();
  if (args.empty()) throw std::runtime_error("--nproc: cannot read /proc/self/cmdline");
  int port = o.master_port > 0 ? o.master_port : free_port();
  std::map<pid_t, int> ranks;  // running children
  for (int r = 0; r < o.nproc; ++r) {
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("--nproc: fork failed");
    if (pid == 0) {
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "--nproc: cannot start rank %d: %s\n", r, std::strerror(errno));
      ::_exit(127);
    }
    ranks[pid] = r;
  }
  int result = 0;
  while (!ranks.empty()) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    auto it = ranks.find(pid);
    if (it == ranks.end()) continue;
    int r = it->second;
    ranks.erase(it);
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok || result != 0) continue;
    result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::fprintf(stderr, "tracelm: rank %d of %d (pid %d) %s; stopping the other ranks\n", r,
                 o.nproc, static_cast<int>(pid), describe_status(status).c_str());
    for (auto& [p, rr] : ranks) ::kill(p, SIGTERM);
    // Ranks that ignore SIGTERM (blocked in a collective) are killed after 5 s.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!ranks.empty() && std::chrono::steady_clock::now() < deadline) {
      pid_t q = ::waitpid(-1, &status, WNOHANG);
      if (q > 0) {
        ranks.erase(q);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    for (auto& [p, rr] : ranks) ::kill(p, SIGKILL);
  }
  return result;
}

std::unique_ptr<DataParallelGroup> join_data_parallel(const DistributedOptions& o,
                                                      std::string* device) {
  std::optional<DistEnv> e = DistEnv::from_environment();
  if (!e || e->world_size <= 1) return nullptr;
  if (device && *device == "cuda") *device = "cuda:" + std::to_string(e->local_rank);
  auto ms = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000));
  return std::make_unique<DataParallelGroup>(*e, ms);
}

}  // namespace tracelm
