// The data-parallel options of `tracelm train` and `tracelm generate`
// (--nproc, --dist-timeout, --master-port; train/distributed.h).
#pragma once

#include <CLI/CLI.hpp>

#include "train/distributed.h"

namespace tracelm::cli {

void add_distributed_options(CLI::App& c, DistributedOptions& o);

}  // namespace tracelm::cli
