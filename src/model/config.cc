#include "model/config.h"

#include "io/input_error.h"
#include "io/json_file.h"

namespace tracelm {

int64_t LlamaConfig::num_parameters() const {
  int64_t d = hidden_size, kv = num_key_value_heads * head_dim();
  int64_t per_layer = d * d * 2 + d * kv * 2 + 3 * d * intermediate_size + 2 * d;
  return vocab_size * d * (tie_word_embeddings ? 1 : 2) + num_hidden_layers * per_layer + d;
}

nlohmann::json LlamaConfig::to_json() const {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"vocab_size", vocab_size},
          {"hidden_size", hidden_size},
          {"intermediate_size", intermediate_size},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"num_key_value_heads", num_key_value_heads},
          {"max_position_embeddings", max_position_embeddings},
          {"rms_norm_eps", rms_norm_eps},
          {"rope_theta", rope_theta},
          {"hidden_act", "silu"},
          {"tie_word_embeddings", tie_word_embeddings},
          {"bos_token_id", bos_token_id},
          {"eos_token_id", eos_token_id},
          {"torch_dtype", "float32"}};
}

LlamaConfig parse_llama_config(const nlohmann::json& j, const std::string& file) {
  auto fail = [&](const std::string& m) { throw InputError(file, 0, m); };
  if (!j.is_object()) fail("expected a JSON object");
  LlamaConfig c;
  auto get_int = [&](const char* k, int64_t* out, bool required) {
    auto it = j.find(k);
    if (it == j.end()) {
      if (required) fail(std::string("missing \"") + k + "\"");
      return;
    }
    if (!it->is_number_integer() || it->get<int64_t>() <= 0 || it->get<int64_t>() > (1LL << 31))
      fail(std::string("\"") + k + "\" must be a positive integer");
    *out = it->get<int64_t>();
  };
  get_int("vocab_size", &c.vocab_size, true);
  get_int("hidden_size", &c.hidden_size, true);
  get_int("intermediate_size", &c.intermediate_size, true);
  get_int("num_hidden_layers", &c.num_hidden_layers, true);
  get_int("num_attention_heads", &c.num_attention_heads, true);
  c.num_key_value_heads = c.num_attention_heads;
  get_int("num_key_value_heads", &c.num_key_value_heads, false);
  get_int("max_position_embeddings", &c.max_position_embeddings, false);
  if (j.contains("rms_norm_eps")) c.rms_norm_eps = j["rms_norm_eps"].get<double>();
  if (j.contains("rope_theta")) c.rope_theta = j["rope_theta"].get<double>();
  if (j.contains("tie_word_embeddings"))
    c.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer())
    c.bos_token_id = j["bos_token_id"].get<int64_t>();
  if (j.contains("eos_token_id") && j["eos_token_id"].is_number_integer())
    c.eos_token_id = j["eos_token_id"].get<int64_t>();
  if (j.contains("hidden_act") && j["hidden_act"] != "silu")
    fail("only hidden_act \"silu\" (SwiGLU) is supported");
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    fail("rope_scaling is not supported");
  if (c.hidden_size % c.num_attention_heads != 0)
    fail("hidden_size must be a multiple of num_attention_heads");
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail("num_attention_heads must be a multiple of num_key_value_heads");
  if (c.head_dim() % 2 != 0) fail("the head dimension must be even (rotary embeddings)");
  return c;
}

LlamaConfig load_llama_config(const std::string& path) {
  nlohmann::json j = read_json_file(path);
  try {
    return parse_llama_config(j, path);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path, 0, std::string("bad field type: ") + e.what());
  }
}

}  // namespace tracelm
