// nccl_all_reduce.cpp: a cuda rank's GPU and its gradient all-reduce over NCCL (see engine/dist/
// device_all_reduce.h); built into forge_gpu_cuda with FORGE_NCCL only. NEVER RUN: no GPU was
// at hand where it was written (docs/DISTRIBUTED.md, "Devices"); only compiled and linked.
//
// The GPU: cudaSetDevice(local rank), as PyTorch's torch.cuda.set_device(local_rank), on the
// training thread, which is the only one that calls CUDA. Every GPU stays visible, so NCCL sees
// the machine's topology, and a CUDA_VISIBLE_DEVICES list the user set is indexed by local rank.
//
// The sum: ncclAllReduce in place on a stream of its own, as DDP's ProcessGroupNCCL does, so it
// runs beside backward's kernels on the compute stream: an event recorded on the compute stream
// after the bucket was packed makes the NCCL stream wait for it; an event recorded on the NCCL
// stream after the sum makes the compute stream wait before it unpacks (PendingCollective::wait).
// The host waits for neither.
//
// The end: ncclCommAbort, not ncclCommDestroy, which may wait for peers' operations: a rank
// unwinding on an error must reach MPI_Abort (train/data_parallel.h, finish_ranks), not hang here.
// A peer that dies leaves this rank's NCCL kernel waiting: mpirun ends every rank then.
#include <cuda_runtime.h>
#include <nccl.h>

#include <stdexcept>
#include <string>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/gpu_runtime.h"
#include "engine/dist/device_all_reduce.h"

namespace forge::dist {
namespace {

void check_nccl(ncclResult_t status, const char* what) {
  if (status != ncclSuccess)
    throw std::runtime_error(std::string(what) + " failed: " + ncclGetErrorString(status) + " (" +
                             ncclGetLastError(nullptr) + ")");
}

cudaEvent_t recorded_event(cudaStream_t stream) {
  cudaEvent_t event;
  check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreate");
  check_cuda(cudaEventRecord(event, stream), "cudaEventRecord");
  return event;
}

class NcclPending final : public PendingCollective {
 public:
  NcclPending(cudaEvent_t done, cudaStream_t compute) : done_(done), compute_(compute) {}
  ~NcclPending() override { cudaEventDestroy(done_); }  // freed once the event has completed
  bool test() override {
    const cudaError_t status = cudaEventQuery(done_);
    if (status == cudaErrorNotReady) return false;
    check_cuda(status, "cudaEventQuery (NCCL all-reduce)");
    return true;
  }
  void wait() override {
    check_cuda(cudaStreamWaitEvent(compute_, done_, 0), "cudaStreamWaitEvent (NCCL all-reduce)");
  }

 private:
  cudaEvent_t done_;
  cudaStream_t compute_;
};

class NcclAllReduce final : public DeviceAllReduce {
 public:
  explicit NcclAllReduce(Communicator& comm) {
    int gpus = 0;
    check_cuda(cudaGetDeviceCount(&gpus), "cudaGetDeviceCount");
    if (comm.local_rank() >= gpus)
      throw std::runtime_error("cuda rank " + std::to_string(comm.rank()) + " is local rank " +
                               std::to_string(comm.local_rank()) + " on its machine, which shows " +
                               std::to_string(gpus) +
                               " GPU(s): one rank per GPU (fewer ranks a machine, or check "
                               "CUDA_VISIBLE_DEVICES)");
    check_cuda(cudaSetDevice(comm.local_rank()), "cudaSetDevice");
    ncclUniqueId id{};
    if (comm.rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    comm.broadcast(&id, sizeof id, 0);
    check_nccl(ncclCommInitRank(&nccl_, comm.size(), id, comm.rank()), "ncclCommInitRank");
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    // After cudaSetDevice: the compute stream is made on first use, on the current device.
    compute_ = static_cast<cudaStream_t>(gpu_cuda::compute_stream_handle());
    int version = 0;
    ncclGetVersion(&version);
    name_ = "NCCL " + std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) +
            "." + std::to_string(version % 100);
  }
  ~NcclAllReduce() override {
    ncclCommAbort(nccl_);
    cudaStreamDestroy(stream_);
  }

  std::string name() const override { return name_; }

  std::unique_ptr<PendingCollective> start_all_reduce_sum(float* data, size_t count) override {
    const cudaEvent_t packed = recorded_event(compute_);
    check_cuda(cudaStreamWaitEvent(stream_, packed, 0), "cudaStreamWaitEvent");
    cudaEventDestroy(packed);  // freed once it has completed
    check_nccl(ncclAllReduce(data, data, count, ncclFloat, ncclSum, nccl_, stream_),
               "ncclAllReduce");
    return std::make_unique<NcclPending>(recorded_event(stream_), compute_);
  }

 private:
  ncclComm_t nccl_ = nullptr;
  cudaStream_t stream_ = nullptr, compute_ = nullptr;
  std::string name_;
};

}  // namespace

bool nccl_built_in() {
  return true;
}

std::unique_ptr<DeviceAllReduce> make_device_all_reduce(Device device, Communicator& comm) {
  if (device != Device::cuda) return nullptr;
  return std::make_unique<NcclAllReduce>(comm);
}

}  // namespace forge::dist
