// Devices: where the model, its LoRA adapters, optimizer state and KV cache
// live, and in which precision (issue 15).
//
// Contract:
//  - parse_device() accepts "cpu", "cuda" and "cuda:N"; anything else, or a
//    CUDA device when this libtorch has no CUDA (or sees fewer GPUs), throws
//    std::invalid_argument with a message saying what was asked and what is
//    available. "cuda" with a LOCAL_RANK (one process per GPU) is resolved
//    by the caller (distributed.h).
//  - compute_dtype(): bfloat16 on CUDA, float32 on the CPU.
//  - place_model(m, device, training): moves every parameter to `device`;
//    frozen parameters (requires_grad false) in compute_dtype(device),
//    trainable ones (LoRA A/B, or everything in full training) in float32, so
//    that optimizer state (created by AdamW from the parameters) is float32.
//    training=false (generation, scoring): every parameter in the compute
//    dtype. On the CPU nothing changes precision (float32 throughout).
//  - The model's forward moves its inputs (ids, positions, valid) to the
//    model's device and returns float32 logits on that device; the KV cache
//    lives on the model's device.
//  - Only the C++ API common to libtorch 1.13 and 2.x is used.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>

#include "model/llama.h"

namespace tracelm {

torch::Device parse_device(const std::string& spec);
torch::Dtype compute_dtype(const torch::Device& d);
// `low` overrides compute_dtype(d) (tests run the GPU's bf16 policy on the CPU).
void place_model(Llama& m, const torch::Device& d, bool training,
                 std::optional<torch::Dtype> low = std::nullopt);
// The device of the model's parameters.
torch::Device model_device(Llama& m);
// Human-readable list of what this libtorch can run on ("cpu", "cpu, cuda:0 (1 GPU)").
std::string available_devices();

}  // namespace tracelm
