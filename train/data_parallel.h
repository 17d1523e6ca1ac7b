// data_parallel.h: what a training run does differently as one rank of several (mpirun -np N;
// docs/DISTRIBUTED.md), kept here so that train/trainer.cpp only asks.
//
//   batches      --batch-size is the global batch; each rank trains on its contiguous share of
//                every global batch (data::shard_range: the first rows % N ranks take one row
//                more); a run whose global batch, or last partial batch, has fewer rows than
//                ranks is refused (drop it with --drop-last, or choose another --batch-size).
//   gradients    all-reduced in buckets of --bucket-mb during backward (dist::GradientReducer),
//                each rank's weighted by its share of the global batch: after backward every rank
//                holds the gradient of the whole batch's mean loss, so clipping sees the global
//                norm and every rank applies the same update. MPI sums cpu and sim buckets, NCCL
//                cuda buckets in device memory (dist::DeviceAllReduce).
//   randomness   keyed by the sample (augmentation, drop path) or, for dropout, by the sample's
//                row in the global batch (dist::set_batch_share), so the same whatever N is.
//   metrics      loss sums and correct counts summed over ranks at each read; a non-finite loss
//                on any rank is found by all at the same read, and all stop.
//   weights      broadcast from rank 0 at start (and after --resume, which every rank reads).
//   writing      rank 0 alone owns the run folder (lock, checkpoints, metrics.jsonl, reports),
//                evaluates the validation and test sides and prints; the other ranks' stdout goes
//                to /dev/null, their errors still reach stderr.
//   batch norm   per-rank statistics unless --sync-bn (dist::SyncBatchNormScope).
//   failure      a rank ending with an error ends every rank (finish_ranks); mpirun ends the job
//                when a rank dies.
// With one rank (no launcher) none of this changes anything: no reducer, no broadcast.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "engine/dist/communicator.h"
#include "engine/dist/device_all_reduce.h"
#include "engine/dist/gradient_reducer.h"
#include "engine/dist/sync_batch_norm.h"
#include "engine/nn/module.h"
#include "train/step_metrics.h"

namespace forge::train {

struct TrainOptions;

class DataParallel {
 public:
  // Joins the ranks (MPI_Init when launched as several); on ranks other than 0 sends stdout to
  // /dev/null; a cuda rank takes the GPU of its local rank (cudaSetDevice) and joins NCCL.
  // Before anything touches a device.
  explicit DataParallel(const TrainOptions& options);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  dist::Communicator& comm() const { return comm_; }
  bool writer() const { return comm_.rank() == 0; }
  int ranks() const { return comm_.size(); }
  // The training side's shares, once its size is known: refuses (OptionError) a global batch or a
  // last partial batch with fewer rows than ranks.
  void check_shares(size_t images, int batch_size, bool drop_last) const;
  // Rank 0's run folder, on every rank.
  std::string shared_path(const std::string& path_on_rank0) const;

  // After the model is made (and a checkpoint loaded): rank 0's weights and buffers everywhere,
  // and the reducer over `model`'s parameters in buckets of `bucket_mb` MiB (--bucket-mb); with
  // --sync-bn, the scope for training.
  void start(const nn::Module& model, bool sync_bn, double bucket_mb);
  // The reducer a training step hands its backward to (null with one rank).
  dist::GradientReducer* reducer() const { return reducer_.get(); }

  // The global batch number `batch` of an epoch of `images` training images, `batch_size` each:
  // its rows over every rank.
  int64_t global_rows(int64_t batch, size_t images, int batch_size) const;
  // A step of `local_rows` of `global` rows: sets this rank's share for dropout
  // (dist::set_batch_share) and returns its weight in the gradient sum, local_rows / global.
  float step_share(int local_rows, int64_t global);
  // A snapshot of this rank's running sums as the sums over every rank (a collective).
  MetricsSnapshot reduce(const MetricsSnapshot& local) const;
  // "all-reduce over 2 ranks: 1.2 MB a step in 3 buckets, 3.4 ms a step from the first bucket's
  // start to the last's end, 56% of it hidden behind backward (1.5 ms a step waited for after
  // backward)" for the steps since the last call (on cuda volume and buckets only), or "" with
  // one rank.
  std::string reduce_summary();

 private:
  dist::Communicator& comm_;
  std::unique_ptr<dist::DeviceAllReduce> device_sum_;  // cuda: NCCL; cpu, sim: null (MPI)
  std::unique_ptr<dist::GradientReducer> reducer_;
  std::optional<dist::SyncBatchNormScope> sync_bn_;
  float last_weight_ = 1.f;
};

// The process's exit: with several ranks, a rank ending with an error code ends them all with it
// (MPI_Abort) instead of leaving the others inside a collective; returns `code` otherwise.
int finish_ranks(int code);

}  // namespace forge::train
