// builtin.cpp: registers whichever GPU backends the build produced (FORGE_SIM, FORGE_CUDA).
#include "engine/cuda/builtin.h"

namespace forge {
#if FORGE_HAVE_SIM
namespace gpu_sim {
void register_gpu_backend();
}
#endif
#if FORGE_HAVE_CUDA
namespace gpu_cuda {
void register_gpu_backend();
}
#endif

void register_builtin_backends() {
#if FORGE_HAVE_SIM
  gpu_sim::register_gpu_backend();
#endif
#if FORGE_HAVE_CUDA
  gpu_cuda::register_gpu_backend();
#endif
}

}  // namespace forge
