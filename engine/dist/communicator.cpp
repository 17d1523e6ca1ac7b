// communicator.cpp: the single-rank communicator and the choice of the process's communicator
// (see communicator.h).
#include "engine/dist/communicator.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include "engine/dist/device_all_reduce.h"
#include "engine/dist/launch.h"

namespace forge::dist {
namespace {

class Done final : public PendingCollective {
 public:
  bool test() override { return true; }
  void wait() override {}
};

class SingleRank final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string name() const override { return "single rank"; }
  void all_reduce_sum(float*, size_t) override {}
  void all_reduce_sum(double*, size_t) override {}
  void all_reduce_min(double*, size_t) override {}
  std::unique_ptr<PendingCollective> start_all_reduce_sum(float*, size_t) override {
    return std::make_unique<Done>();
  }
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int exit_code) override { std::exit(exit_code); }
};

std::unique_ptr<Communicator> make_communicator() {
  const int launched = launched_ranks();
  if (launched <= 1) return std::make_unique<SingleRank>();
  if (!mpi_built_in())
    throw std::runtime_error(
        "started as one of " + std::to_string(launched) +
        " ranks (by mpirun or another launcher), but this build has no MPI: install Open MPI "
        "(scripts/setup.sh does) and configure again with -DFORGE_MPI=ON, or run without mpirun");
  return make_mpi_communicator();
}

}  // namespace

int launched_ranks() {
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"})
    if (const char* value = std::getenv(variable)) return std::max(1, std::atoi(value));
  return 1;
}

Communicator& communicator() {
  static std::unique_ptr<Communicator> comm = make_communicator();
  return *comm;
}

std::string broadcast_string(Communicator& comm, const std::string& text, int root) {
  uint64_t length = text.size();
  comm.broadcast(&length, sizeof length, root);
  std::string out = comm.rank() == root ? text : std::string(length, '\0');
  comm.broadcast(out.data(), length, root);
  return out;
}

#ifndef FORGE_MPI
bool mpi_built_in() {
  return false;
}
std::unique_ptr<Communicator> make_mpi_communicator() {
  throw std::logic_error("make_mpi_communicator: built without MPI");
}
#endif

#ifndef FORGE_NCCL
bool nccl_built_in() {
  return false;
}
std::unique_ptr<DeviceAllReduce> make_device_all_reduce(Device device, Communicator& comm) {
  if (device != Device::cuda) return nullptr;
  throw std::runtime_error(
      "one of " + std::to_string(comm.size()) +
      " cuda ranks, but this build has no NCCL to sum their gradients on the GPUs: configure "
      "with -DFORGE_CUDA=ON -DFORGE_NCCL=ON (NCCL beside the CUDA toolkit; docs/DISTRIBUTED.md)");
}
#endif

}  // namespace forge::dist
