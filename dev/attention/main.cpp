// attention_playground: numbered versions of attention forward and backward (v1 naive, v2 tiled,
// v3 flash = kernels/attention.cu, v4 flash with a warp per row, v5 FlashAttention-2 on bf16 tensor
// cores, v6 v5 behind the backend at bf16 precision), each checked against the CPU backend and
// timed over a grid of shapes. This file parses the flags and picks the build of
// attention_playground.cu for the device; docs/ATTENTION_KERNELS.md explains the versions and shows
// results.
//
//   build/bin/attention_playground                          every version, default shapes, sim
//   build/bin/attention_playground --kernel 2 --reps 3
//   build/bin/attention_playground --check-only --tokens 1,17,65 --head-dims 32,64
//   build/bin/attention_playground --device cuda            needs FORGE_CUDA=ON and a GPU
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "dev/attention/playground.h"
#include "engine/cuda/builtin.h"
#include "tools/program.h"

// The program itself; program::run (tools/program.h) makes `app` and catches what escapes.
int playground_main(CLI::App& app, int argc, char** argv) {
  forge::attention_playground::Options options;
  std::string version = "all", device = "sim";
  app.add_option(
         "--kernel", version,
         "1 naive, 2 tiled, 3 flash (kernels/attention.cu), 4 warp-per-row flash, 5 bf16 mma "
         "flash, 6 the backend at bf16 (v5 behind attention_*), or all")
      ->capture_default_str();
  app.add_option("--device", device, "sim (kernels/sim on the CPU) or cuda")
      ->check(CLI::IsMember({"sim", "cuda"}))
      ->capture_default_str();
  auto* reps = app.add_option("--reps", options.reps,
                              "timed runs per shape and direction (default 5 on sim, 20 on cuda)")
                   ->check(CLI::PositiveNumber);
  app.add_flag("--check-only", options.check_only, "check against the CPU reference, no timing");
  app.add_option("--batch", options.batches, "batch sizes (default 1 on sim, 8 on cuda)")
      ->delimiter(',');
  app.add_option("--heads", options.heads, "head counts (default 4 on sim, 12 on cuda)")
      ->delimiter(',');
  app.add_option("--tokens", options.tokens, "token counts T (default 17,50,65,197)")
      ->delimiter(',');
  app.add_option("--head-dims", options.head_dims, "head dims D, at most 128 (default 32,64)")
      ->delimiter(',');
  app.add_option("--seed", options.seed, "of the random inputs")->capture_default_str();
  app.parse(argc, argv);

  const bool cuda = device == "cuda";
  if (version == "all")
    options.versions = {1, 2, 3, 4, 5, 6};
  else
    try {
      options.versions = {std::stoi(version)};
    } catch (const std::exception&) {
      std::fprintf(stderr, "--kernel %s: expected a number or all\n", version.c_str());
      return forge::program::usage;
    }
  if (!*reps) options.reps = cuda ? 20 : 5;
  if (options.batches.empty()) options.batches = {cuda ? 8 : 1};
  if (options.heads.empty()) options.heads = {cuda ? 12 : 4};
  if (options.tokens.empty()) options.tokens = {17, 50, 65, 197};
  if (options.head_dims.empty()) options.head_dims = {32, 64};

  forge::register_builtin_backends();
  if (cuda) {
#if ATTENTION_PLAYGROUND_CUDA
    return forge::gpu_cuda::run_attention_playground(options);
#else
    std::fprintf(stderr,
                 "--device cuda: this build has no CUDA version of the playground "
                 "(configure with -DFORGE_CUDA=ON); use --device sim\n");
    return forge::program::usage;
#endif
  }
#if ATTENTION_PLAYGROUND_SIM
  return forge::gpu_sim::run_attention_playground(options);
#else
  std::fprintf(stderr, "--device sim: this build has no sim (FORGE_SIM=OFF)\n");
  return forge::program::usage;
#endif
}

int main(int argc, char** argv) {
  return forge::program::run("attention_playground",
                             "Attention kernel playground: versions of attention forward and "
                             "backward, checked against the CPU backend and timed.",
                             [&](CLI::App& app) { return playground_main(app, argc, argv); });
}
