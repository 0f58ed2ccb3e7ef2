// Model subcommands (built only with libtorch): score.
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "io/input_error.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

namespace tracelm::cli {

namespace {

void add_score(CLI::App& app) {
  struct Opts {
    std::string model, adapter, text, file;
    bool no_bos = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand(
      "score", "log-probability of a text under a model (JSON: ids, per-token logprobs, sum)");
  c->add_option("--model", o->model,
                "model directory (config.json, model.safetensors, tokenizer.model)")
      ->required();
  c->add_option("--adapter", o->adapter, "LoRA adapter directory (PEFT layout)");
  auto* t = c->add_option("--text", o->text, "text to score");
  auto* f = c->add_option("--file", o->file, "file whose content is scored");
  t->excludes(f);
  c->add_flag("--no-bos", o->no_bos, "do not prepend the BOS token");
  c->callback([o] {
    if (o->text.empty() && o->file.empty())
      throw CLI::ValidationError("--text or --file is required");
    if (!o->adapter.empty()) throw InputError(o->adapter, 0, "LoRA adapters are not supported yet");
    std::string text = o->text;
    if (!o->file.empty()) {
      std::ifstream in(o->file, std::ios::binary);
      if (!in) throw InputError(o->file, 0, "cannot open");
      std::stringstream ss;
      ss << in.rdbuf();
      text = ss.str();
    }
    torch::NoGradGuard no_grad;
    Llama model = load_llama(o->model);
    model->eval();
    Tokenizer tok = Tokenizer::load(o->model + "/tokenizer.model");
    std::vector<int> ids = tok.encode(text, !o->no_bos, false);
    if (ids.size() < 2)
      throw InputError(o->file.empty() ? "--text" : o->file, 0, "text too short to score");
    int64_t ctx = model->config().max_position_embeddings;
    if (static_cast<int64_t>(ids.size()) > ctx)
      throw InputError(o->file.empty() ? "--text" : o->file, 0,
                       "text has " + std::to_string(ids.size()) +
                           " tokens, more than the model's " + std::to_string(ctx));
    torch::Tensor x = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).unsqueeze(0);
    torch::Tensor logp = torch::log_softmax(model->forward(x), -1)[0];  // (T,V)
    nlohmann::ordered_json out;
    out["ids"] = ids;
    nlohmann::ordered_json tokens = nlohmann::ordered_json::array();
    double sum = 0;
    for (size_t i = 1; i < ids.size(); ++i) {
      double lp = logp[static_cast<int64_t>(i - 1)][ids[i]].item<double>();
      sum += lp;
      tokens.push_back({{"id", ids[i]}, {"piece", tok.piece(ids[i])}, {"logprob", lp}});
    }
    out["tokens"] = tokens;
    out["sum_logprob"] = sum;
    out["mean_logprob"] = sum / static_cast<double>(ids.size() - 1);
    std::printf("%s\n", out.dump(2).c_str());
  });
}

}  // namespace

void add_model_commands(CLI::App& app) { add_score(app); }

}  // namespace tracelm::cli
