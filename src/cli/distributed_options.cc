#include "cli/distributed_options.h"

namespace tracelm::cli {

void add_distributed_options(CLI::App& c, DistributedOptions& o) {
  c.add_option("--nproc", o.nproc,
               "start N processes on this machine (data parallel: RANK, WORLD_SIZE, LOCAL_RANK, "
               "MASTER_ADDR, MASTER_PORT as torchrun sets them; set those yourself for many "
               "machines)")
      ->check(CLI::Range(1, 1024));
  c.add_option("--dist-timeout", o.timeout_s,
               "seconds a rank waits for the others (rendezvous, each collective) before it "
               "stops with an error")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 86400.0));
  c.add_option("--master-port", o.master_port, "with --nproc: the rendezvous port (0: a free one)")
      ->capture_default_str();
}

}  // namespace tracelm::cli
