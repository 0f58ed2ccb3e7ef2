// Data-parallel processes on libtorch's c10d (issue 15): rendezvous through a
// TCPStore, collectives through ProcessGroupGloo, and a local launcher.
//
// Contract:
//  - The launcher environment is torchrun's (also what Slurm and Kubernetes
//    operators set): RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT.
//    DistEnv::from_environment() reads it; without WORLD_SIZE (or with
//    WORLD_SIZE=1) a process runs alone. A partial or malformed environment
//    is an error naming the variable.
//  - DataParallelGroup: rank 0 hosts the TCPStore at MASTER_ADDR:MASTER_PORT;
//    every rank connects (waiting up to the timeout for the others) and
//    builds a Gloo process group on it. all_reduce_sum() flattens tensors of
//    one dtype into buckets of at most kBucketBytes on the CPU (tensors on a
//    GPU are copied there and back; the gradients data-parallel LoRA sums are
//    a few million numbers), reduces each bucket, and writes the sums back in
//    place. Every collective fails, rather than hangs, when a peer died or has
//    not answered within the timeout: std::runtime_error naming this rank and
//    the operation.
//  - launch_local_ranks(): `--nproc N` starts N copies of this program (its
//    own arguments without --nproc) as ranks 0..N-1 of one machine, on a free
//    port, and waits. When a rank fails the others are stopped (SIGTERM, then
//    SIGKILL after 5 s) and the launcher returns that rank's status with a
//    message naming it; 0 when every rank succeeded.
//  - Built with Gloo (TRACELM_WITH_GLOO, CMake finds gloo's headers:
//    Debian's libgloo-dev); without it, joining a group of more than one
//    process throws a clear error and one process works as before.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "train/trainer.h"

namespace tracelm {

struct DistributedOptions {
  int nproc = 0;           // --nproc: local ranks to start (0 or 1: none)
  double timeout_s = 300;  // --dist-timeout: rendezvous and each collective
  int master_port = 0;     // --master-port for --nproc (0: a free port)
};

struct DistEnv {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // nullopt when WORLD_SIZE is unset.
  static std::optional<DistEnv> from_environment();
};

class DataParallelGroup : public GradientSync {
 public:
  static constexpr size_t kBucketBytes = 25u << 20;
  DataParallelGroup(const DistEnv& env, std::chrono::milliseconds timeout);
  ~DataParallelGroup() override;
  int rank() const override { return env_.rank; }
  int world_size() const override { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  void all_reduce_sum(std::vector<torch::Tensor>& tensors) override;
  void broadcast(std::vector<torch::Tensor>& tensors, int root) override;
  void barrier() override;
  // Every rank's bytes, in rank order, on every rank (through the store).
  std::vector<std::string> all_gather_bytes(const std::string& mine);

 private:
  struct Impl;
  DistEnv env_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<Impl> impl_;
  int64_t gathers_ = 0;
};

// -1 when nothing was launched (no --nproc > 1, or this process is a rank).
int launch_local_ranks(const DistributedOptions& o);

// This process's group (null when it runs alone). *device "cuda" becomes
// "cuda:LOCAL_RANK" (one GPU per local rank).
std::unique_ptr<DataParallelGroup> join_data_parallel(const DistributedOptions& o,
                                                      std::string* device);

}  // namespace tracelm
