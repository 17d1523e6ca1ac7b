// builtin.h: makes the GPU backends built into this program (sim, cuda) known to backend().
// Programs call it once at start; Device::cpu needs nothing.
#pragma once

namespace forge {

void register_builtin_backends();

}  // namespace forge
