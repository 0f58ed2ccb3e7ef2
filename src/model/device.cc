#include "model/device.h"

#include <stdexcept>

namespace tracelm {

std::string available_devices() {
  if (!torch::cuda::is_available()) return "cpu only (this libtorch has no usable CUDA device)";
  int64_t n = static_cast<int64_t>(torch::cuda::device_count());
  return "cpu, cuda:0.." + std::to_string(n - 1) + " (" + std::to_string(n) + " GPU" +
         (n == 1 ? "" : "s") + ")";
}

torch::Device parse_device(const std::string& spec) {
  if (spec == "cpu") return torch::Device(torch::kCPU);
  int64_t index = 0;
  if (spec == "cuda") {
    index = 0;
  } else if (spec.rfind("cuda:", 0) == 0 && spec.size() > 5 &&
             spec.find_first_not_of("0123456789", 5) == std::string::npos && spec.size() < 10) {
    index = std::stoll(spec.substr(5));
  } else {
    throw std::invalid_argument("--device " + spec + ": expected cpu, cuda or cuda:N");
  }
  if (!torch::cuda::is_available())
    throw std::invalid_argument("--device " + spec +
                                ": CUDA is not available (torch::cuda::is_available() is false: "
                                "this libtorch was built without CUDA, or no GPU/driver is "
                                "visible); available: " +
                                available_devices() +
                                ". Build against a CUDA libtorch with scripts/build --cuda");
  int64_t n = static_cast<int64_t>(torch::cuda::device_count());
  if (index >= n)
    throw std::invalid_argument("--device " + spec +
                                ": no such GPU; available: " + available_devices());
  return torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(index));
}

torch::Dtype compute_dtype(const torch::Device& d) {
  return d.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
}

torch::Device model_device(Llama& m) { return m->model->embed_tokens->weight.device(); }

void place_model(Llama& m, const torch::Device& d, bool training,
                 std::optional<torch::Dtype> low_dtype) {
  torch::Dtype low = low_dtype.value_or(compute_dtype(d));
  torch::NoGradGuard ng;
  // Parameter tensors are replaced in place (set_data), so the modules'
  // handles and the names stay valid, and requires_grad is kept.
  for (auto& p : m->named_parameters()) {
    torch::Tensor t = p.value();
    torch::Dtype want = training && t.requires_grad() ? torch::kFloat32 : low;
    if (t.device() == d && t.scalar_type() == want) continue;
    t.set_data(t.to(d, want));
  }
}

}  // namespace tracelm
