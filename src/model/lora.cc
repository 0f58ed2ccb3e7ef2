// LoRA adapters on the Llama projections, in the PEFT on-disk layout.
#include <sys/stat.h>

#include "io/atomic_file.h"
#include "io/input_error.h"
#include "io/json_file.h"
#include "model/llama.h"
#include "model/safetensors.h"

namespace tracelm {

namespace {

constexpr std::string_view kPeftPrefix = "base_model.model.";

std::string last_component(const std::string& name) {
  size_t dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

// Projections of the model, by module path ("model.layers.0.self_attn.q_proj").
std::vector<std::pair<std::string, ProjImpl*>> projections(Llama& m) {
  std::vector<std::pair<std::string, ProjImpl*>> out;
  for (auto& item : m->named_modules()) {
    if (auto* p = dynamic_cast<ProjImpl*>(item.value().get())) out.emplace_back(item.key(), p);
  }
  return out;
}

}  // namespace

nlohmann::json LoraConfig::to_json(const std::string& base_model) const {
  return {{"peft_type", "LORA"},
          {"task_type", "CAUSAL_LM"},
          {"r", r},
          {"lora_alpha", alpha},
          {"lora_dropout", dropout},
          {"target_modules", target_modules},
          {"bias", "none"},
          {"fan_in_fan_out", false},
          {"inference_mode", true},
          {"base_model_name_or_path", base_model}};
}

LoraConfig LoraConfig::from_json(const nlohmann::json& j, const std::string& file) {
  auto fail = [&](const std::string& m) { throw InputError(file, 0, m); };
  if (!j.is_object()) fail("expected a JSON object");
  if (j.value("peft_type", "LORA") != "LORA") fail("peft_type must be LORA");
  if (j.value("bias", "none") != "none") fail("only bias \"none\" adapters are supported");
  if (j.value("fan_in_fan_out", false)) fail("fan_in_fan_out adapters are not supported");
  LoraConfig c;
  try {
    c.r = j.at("r").get<int64_t>();
    c.alpha = j.at("lora_alpha").get<double>();
    c.dropout = j.value("lora_dropout", 0.0);
    c.target_modules = j.at("target_modules").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("bad adapter config: ") + e.what());
  }
  if (c.r <= 0 || c.r > 4096) fail("r must be in 1..4096");
  if (c.target_modules.empty()) fail("target_modules is empty");
  return c;
}

int64_t add_lora(Llama& m, const LoraConfig& c, uint64_t seed) {
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  for (auto& p : m->parameters()) p.set_requires_grad(false);
  int64_t trainable = 0, matched = 0;
  for (auto& [name, proj] : projections(m)) {
    std::string leaf = last_component(name);
    if (std::find(c.target_modules.begin(), c.target_modules.end(), leaf) == c.target_modules.end())
      continue;
    proj->enable_lora(c.r, c.alpha, c.dropout, gen);
    trainable += proj->lora_A.numel() + proj->lora_B.numel();
    ++matched;
  }
  if (matched == 0)
    throw std::invalid_argument("LoRA target_modules match no projection of the model");
  return trainable;
}

void save_lora(const Llama& model, const LoraConfig& c, const std::string& dir,
               const std::string& base_model) {
  ::mkdir(dir.c_str(), 0755);
  Llama m = model;  // shared handle
  std::vector<torch::Tensor> keep;
  std::vector<TensorData> tensors;
  for (auto& [name, proj] : projections(m)) {
    if (!proj->has_lora()) continue;
    for (auto [suffix, t] :
         {std::pair{"lora_A", proj->lora_A}, std::pair{"lora_B", proj->lora_B}}) {
      torch::Tensor x = t.detach().to(torch::kFloat32).contiguous();
      keep.push_back(x);
      tensors.push_back({std::string(kPeftPrefix) + name + "." + suffix + ".weight", "F32",
                         std::vector<int64_t>(x.sizes().begin(), x.sizes().end()),
                         x.data_ptr<float>(), static_cast<size_t>(x.numel()) * sizeof(float)});
    }
  }
  write_safetensors(dir + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
  AtomicFile cfg(dir + "/adapter_config.json");
  cfg.write(c.to_json(base_model).dump(2) + "\n");
  cfg.close();
}

LoraConfig load_lora(Llama& m, const std::string& dir) {
  std::string cfg_path = dir + "/adapter_config.json";
  nlohmann::json j = read_json_file(cfg_path);
  LoraConfig c = LoraConfig::from_json(j, cfg_path);
  add_lora(m, c, 0);
  std::string path = dir + "/adapter_model.safetensors";
  SafetensorsFile st(path);
  torch::NoGradGuard ng;
  for (auto& [name, proj] : projections(m)) {
    if (!proj->has_lora()) continue;
    for (auto [suffix, t] :
         {std::pair{"lora_A", proj->lora_A}, std::pair{"lora_B", proj->lora_B}}) {
      std::string key = std::string(kPeftPrefix) + name + "." + suffix + ".weight";
      if (!st.has(key)) throw InputError(path, 0, "the adapter has no tensor \"" + key + "\"");
      TensorView v = st.get(key);
      std::vector<int64_t> want(t.sizes().begin(), t.sizes().end());
      if (v.shape != want) throw InputError(path, 0, "tensor \"" + key + "\" has the wrong shape");
      torch::Tensor dst = torch::empty(t.sizes(), torch::kFloat32);
      to_float32(v, dst.data_ptr<float>());
      t.copy_(dst);
    }
  }
  return c;
}

void merge_lora(Llama& m) {
  for (auto& [name, proj] : projections(m)) proj->merge_lora();
  for (auto& p : m->parameters()) p.set_requires_grad(true);
}

}  // namespace tracelm
