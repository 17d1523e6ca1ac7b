// mpi_communicator.cpp: the communicator over MPI_COMM_WORLD (see communicator.h); built with
// FORGE_MPI only.
//
// MPI_Init_thread asks for MPI_THREAD_FUNNELED: only the training thread calls MPI (the data
// loader's workers never do). The error handler stays MPI_ERRORS_ARE_FATAL: a failed collective
// (a peer that died, a broken link) ends the job instead of returning into training.
// The C API only: mpi.h would otherwise pull in the deprecated C++ bindings (libmpi_cxx).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>

#include "engine/dist/communicator.h"
#include "engine/dist/launch.h"

namespace forge::dist {
namespace {

void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw std::runtime_error(std::string(what) + " failed: " + std::string(text, length));
}

int int_count(size_t count, const char* what) {
  if (count > size_t(std::numeric_limits<int>::max()))
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(count) +
                                " elements is more than one MPI call takes");
  return int(count);
}

class MpiPending final : public PendingCollective {
 public:
  explicit MpiPending(MPI_Request request) : request_(request) {}
  ~MpiPending() override {
    if (request_ != MPI_REQUEST_NULL) MPI_Wait(&request_, MPI_STATUS_IGNORE);
  }
  bool test() override {
    int done = 0;
    check(MPI_Test(&request_, &done, MPI_STATUS_IGNORE), "MPI_Test");
    return done != 0;
  }
  void wait() override { check(MPI_Wait(&request_, MPI_STATUS_IGNORE), "MPI_Wait"); }

 private:
  MPI_Request request_;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local),
          "MPI_Comm_split_type");
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_free(&local);
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(version, &length);
    library_ = std::string(version, length);
    if (auto cut = library_.find_first_of(",\n"); cut != std::string::npos) library_.resize(cut);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  std::string name() const override { return "MPI (" + library_ + ")"; }

  void all_reduce_sum(float* data, size_t count) override {
    check(MPI_Allreduce(MPI_IN_PLACE, data, int_count(count, "all_reduce_sum"), MPI_FLOAT, MPI_SUM,
                        MPI_COMM_WORLD),
          "MPI_Allreduce");
  }
  void all_reduce_sum(double* data, size_t count) override {
    check(MPI_Allreduce(MPI_IN_PLACE, data, int_count(count, "all_reduce_sum"), MPI_DOUBLE, MPI_SUM,
                        MPI_COMM_WORLD),
          "MPI_Allreduce");
  }
  void all_reduce_min(double* data, size_t count) override {
    check(MPI_Allreduce(MPI_IN_PLACE, data, int_count(count, "all_reduce_min"), MPI_DOUBLE, MPI_MIN,
                        MPI_COMM_WORLD),
          "MPI_Allreduce");
  }
  std::unique_ptr<PendingCollective> start_all_reduce_sum(float* data, size_t count) override {
    MPI_Request request;
    check(MPI_Iallreduce(MPI_IN_PLACE, data, int_count(count, "start_all_reduce_sum"), MPI_FLOAT,
                         MPI_SUM, MPI_COMM_WORLD, &request),
          "MPI_Iallreduce");
    return std::make_unique<MpiPending>(request);
  }
  void broadcast(void* data, size_t bytes, int root) override {
    check(MPI_Bcast(data, int_count(bytes, "broadcast"), MPI_BYTE, root, MPI_COMM_WORLD),
          "MPI_Bcast");
  }
  void barrier() override { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
  [[noreturn]] void abort(int exit_code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; should it, end this rank at least
  }

 private:
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::string library_;
};

}  // namespace

bool mpi_built_in() {
  return true;
}

std::unique_ptr<Communicator> make_mpi_communicator() {
  return std::make_unique<MpiCommunicator>();
}

}  // namespace forge::dist
