// data_parallel.cpp: a training run as one rank of several (see data_parallel.h).
#include "train/data_parallel.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "data/loader.h"
#include "engine/backend.h"
#include "engine/dist/batch_share.h"
#include "train/options.h"
#include "train/saved_model.h"
#include "train/trainer.h"

namespace forge::train {

DataParallel::DataParallel(const TrainOptions& o) : comm_(dist::communicator()) {
  if (comm_.size() == 1) return;
  if (o.batch_size < comm_.size())
    throw OptionError("--batch-size " + std::to_string(o.batch_size) + " is the global batch: it " +
                      "needs at least one image for each of the " + std::to_string(comm_.size()) +
                      " ranks");
  if (!writer() && !std::freopen("/dev/null", "w", stdout))
    std::fprintf(stderr, "train: rank %d: cannot silence stdout; it prints as rank 0 does\n",
                 comm_.rank());
  device_sum_ = dist::make_device_all_reduce(o.device, comm_);
}

void DataParallel::check_shares(size_t images, int batch_size, bool drop_last) const {
  const size_t last = images % size_t(batch_size);
  if (comm_.size() == 1 || drop_last || last == 0 || last >= size_t(comm_.size())) return;
  throw OptionError("the last batch of each epoch has " + std::to_string(last) + " of the " +
                    std::to_string(images) + " training images, fewer than the " +
                    std::to_string(comm_.size()) +
                    " ranks (each needs one): add --drop-last or choose another --batch-size");
}

std::string DataParallel::shared_path(const std::string& path_on_rank0) const {
  return dist::broadcast_string(comm_, path_on_rank0, 0);
}

void DataParallel::start(const nn::Module& model, bool sync_bn, double bucket_mb) {
  if (sync_bn) sync_bn_.emplace(comm_);
  if (comm_.size() == 1) return;
  std::vector<float> host;
  for (const auto& [name, t] : model_tensors(model)) {
    host.resize(size_t(t.numel()));
    Backend& be = backend(t.device());
    const Tensor c = t.contiguous();
    be.copy_to_host(host.data(), c.data(), host.size() * sizeof(float));
    comm_.broadcast(host.data(), host.size() * sizeof(float), 0);
    t.copy_from(Tensor::from_vector(host, t.shape(), t.device()));
  }
  reducer_ = std::make_unique<dist::GradientReducer>(
      comm_, model.parameters(), size_t(bucket_mb * double(1 << 20)), device_sum_.get());
}

DataParallel::~DataParallel() {
  dist::set_batch_share(std::nullopt);
}

float DataParallel::step_share(int local_rows, int64_t global) {
  if (comm_.size() == 1) return 1.f;
  const data::RowRange rows = data::shard_range(size_t(global), comm_.rank(), comm_.size());
  dist::set_batch_share(
      dist::BatchShare{.offset = int64_t(rows.begin), .rows = local_rows, .global_rows = global});
  return last_weight_ = float(local_rows) / float(global);
}

int64_t DataParallel::global_rows(int64_t batch, size_t images, int batch_size) const {
  return std::min<int64_t>(batch_size, int64_t(images) - batch * batch_size);
}

MetricsSnapshot DataParallel::reduce(const MetricsSnapshot& local) const {
  if (comm_.size() == 1) return local;
  // The last step's global loss: each rank's mean, weighted by its share of that step.
  double sums[3] = {local.loss_sum, double(local.correct), local.last_loss * last_weight_};
  comm_.all_reduce_sum(sums, 3);
  double first = local.first_non_finite_step < 0 ? 1e300 : double(local.first_non_finite_step);
  comm_.all_reduce_min(&first, 1);
  return {.loss_sum = sums[0],
          .correct = long(sums[1]),
          .last_loss = sums[2],
          .first_non_finite_step = first >= 1e300 ? -1 : int64_t(first)};
}

std::string DataParallel::reduce_summary() {
  if (!reducer_ || reducer_->timing().steps == 0) return "";
  const dist::ReduceTiming t = reducer_->timing();
  reducer_->reset_timing();
  const size_t buckets = reducer_->bucket_count();
  char line[320];
  if (device_sum_) {  // the host's clocks see NCCL's work queued, not done: no span to show
    std::snprintf(line, sizeof line,
                  "all-reduce over %d ranks (%s): %.2f MB a step in %zu bucket%s", comm_.size(),
                  device_sum_->name().c_str(), reducer_->bytes_per_step() / 1e6, buckets,
                  buckets == 1 ? "" : "s");
    return line;
  }
  std::snprintf(line, sizeof line,
                "all-reduce over %d ranks: %.2f MB a step in %zu bucket%s, %.2f ms a step from "
                "the first bucket's start to the last's end, %.0f%% of it hidden behind backward "
                "(%.2f ms a step waited for after backward)",
                comm_.size(), reducer_->bytes_per_step() / 1e6, buckets, buckets == 1 ? "" : "s",
                1e3 * t.span_seconds / double(t.steps),
                t.span_seconds > 0 ? 100.0 * (1.0 - t.exposed_seconds / t.span_seconds) : 0.0,
                1e3 * t.exposed_seconds / double(t.steps));
  return line;
}

int finish_ranks(int code) {
  if (code == 0) return code;
  dist::Communicator* ranks = nullptr;
  try {
    ranks = &dist::communicator();
  } catch (const std::exception&) {  // a multi-rank launch of a build without MPI: said already
    return code;
  }
  if (dist::Communicator& comm = *ranks; comm.size() > 1) {
    std::fprintf(stderr, "train: rank %d of %d stops with exit code %d: ending every rank\n",
                 comm.rank(), comm.size(), code);
    comm.abort(code);
  }
  return code;
}

}  // namespace forge::train
