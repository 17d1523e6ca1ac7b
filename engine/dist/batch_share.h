// batch_share.h: which rows of the global batch this rank's batch is, for the layers whose
// randomness is keyed by position in the batch tensor (dropout, engine/nn/layers.h), so that a
// sample's draws do not depend on how many ranks share the batch (docs/DISTRIBUTED.md).
//
// Dropout's mask is a function of (seed, element index in the tensor). With a share set, Dropout
// draws the mask of the whole global batch's tensor ([global_rows * k, ...] for an input of
// [rows * k, ...]) and keeps this rank's rows [offset * k, (offset + rows) * k): the mask one rank
// would use, bit for bit (x * (1 / (1 - p)) is the same product either way), for N times the mask's
// cost (small beside the matmuls). Set by data-parallel training for each step (train/
// data_parallel.h); none otherwise.
#pragma once
#include <cstdint>
#include <optional>

namespace forge::dist {

struct BatchShare {
  int64_t offset = 0;       // this rank's first row in the global batch
  int64_t rows = 0;         // this rank's rows
  int64_t global_rows = 0;  // the global batch's rows
};

void set_batch_share(std::optional<BatchShare> share);  // for the steps to come; nullopt: none
const BatchShare* batch_share();                        // the current share, or null

}  // namespace forge::dist
