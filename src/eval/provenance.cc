#include "eval/provenance.h"

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/input_error.h"
#include "io/json_file.h"

namespace tracelm {

std::string provenance_path(const std::string& set_path) { return set_path + ".provenance.json"; }

void write_provenance(const std::string& set_path, const SetProvenance& p) {
  nlohmann::ordered_json j;
  j["format"] = "tracelm-provenance";
  j["generator"] = p.generator;
  j["protocol"] = p.protocol;
  if (!p.like.empty()) j["like"] = p.like;
  if (!p.model.empty()) j["model"] = p.model;
  j["seed"] = p.seed;
  j["requests"] = p.requests;
  if (!p.settings.empty()) {
    nlohmann::ordered_json& st = j["settings"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : p.settings) st[k] = v;
  }
  write_file_atomically(provenance_path(set_path), j.dump(1) + "\n");
}

std::optional<SetProvenance> read_provenance(const std::string& set_path) {
  const std::string path = provenance_path(set_path);
  if (!file_exists(path)) return std::nullopt;
  nlohmann::json j = read_json_file(path);
  SetProvenance p;
  try {
    if (j.value("format", "") != "tracelm-provenance")
      throw InputError(path, 0,
                       "not a tracelm provenance file (no \"format\": \"tracelm-provenance\")");
    p.generator = j.at("generator").get<std::string>();
    p.protocol = j.at("protocol").get<std::string>();
    if (p.protocol != "like" && p.protocol != "open" && p.protocol != "fixed")
      throw InputError(path, 0, "protocol '" + p.protocol + "': expected like, open or fixed");
    p.like = j.value("like", "");
    p.model = j.value("model", "");
    p.seed = j.value("seed", uint64_t{0});
    p.requests = j.value("requests", uint64_t{0});
    if (j.contains("settings")) {
      if (!j["settings"].is_object()) throw InputError(path, 0, "\"settings\": expected an object");
      for (const auto& [k, v] : j["settings"].items())
        p.settings.emplace_back(k, v.is_string() ? v.get<std::string>() : v.dump());
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path, 0, std::string("malformed provenance: ") + e.what());
  }
  return p;
}

std::string protocol_label(const SetProvenance& p) {
  if (p.protocol != "like") return p.protocol;
  size_t slash = p.like.find_last_of('/');
  return "like " + (slash == std::string::npos ? p.like : p.like.substr(slash + 1));
}

}  // namespace tracelm
