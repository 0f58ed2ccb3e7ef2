// tracelm: learn the shape of microservice call graphs and write new ones.
// Registers every subcommand (cli/commands.h says which file holds which)
// and maps failures to exit codes: 2 for bad input, 1 for other errors.
#include <cstdio>
#include <exception>

#include "cli/cmd_spans.h"
#include "cli/commands.h"
#include "io/input_error.h"

int main(int argc, char** argv) {
  CLI::App app{
      "tracelm: learn the shape of microservice call graphs from real traces and generate new,\n"
      "realistic ones (ingest, encode, train a Llama, generate with constrained decoding,\n"
      "evaluate realism against held-out traces, export to Alibaba CSV, OTLP and Jaeger)",
      "tracelm"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tracelm 0.1.0");
  tracelm::cli::add_ingest(app);
  tracelm::cli::add_validate(app);
  tracelm::cli::add_stats(app);
  tracelm::cli::add_export(app);
  tracelm::cli::add_sample(app);
  tracelm::cli::add_encode(app);
#ifdef TRACELM_WITH_TORCH
  tracelm::cli::add_model_commands(app);
  tracelm::cli::add_generate_commands(app);
  tracelm::cli::add_eval_commands(app);
#endif
  tracelm::cli::add_demo(app);
  tracelm::cli::add_tokenizer(app);
  tracelm::cli::add_baseline(app);
  tracelm::cli::add_evaluate(app);
  tracelm::cli::add_tasks(app);
  tracelm::cli::add_labels(app);
  tracelm::cli::add_downstream(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const tracelm::cli::ExitCode& e) {
    return e.code;
  } catch (const tracelm::InputError& e) {
    std::fprintf(stderr, "tracelm: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tracelm: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
