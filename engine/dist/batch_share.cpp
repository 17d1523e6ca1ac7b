// batch_share.cpp: the current rank's share of the global batch (see batch_share.h).
#include "engine/dist/batch_share.h"

namespace forge::dist {
namespace {
std::optional<BatchShare> g_share;
}

void set_batch_share(std::optional<BatchShare> share) {
  g_share = share;
}

const BatchShare* batch_share() {
  return g_share ? &*g_share : nullptr;
}

}  // namespace forge::dist
