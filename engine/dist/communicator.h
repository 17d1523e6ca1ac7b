// communicator.h: the ranks of a data-parallel run and the collectives they share (docs/
// DISTRIBUTED.md).
//
// One interface, two implementations:
//   single rank  rank 0 of 1; every collective is the identity. A process not started by a
//                launcher (mpirun), and every process of a build without MPI.
//   MPI          (engine/dist/mpi_communicator.cpp, FORGE_MPI) MPI_COMM_WORLD, on host buffers:
//                everything the ranks share, and the gradients of cpu and sim ranks (a cuda
//                rank's gradients go through NCCL: engine/dist/device_all_reduce.h).
// The collectives work on host memory. Every rank must call the collectives in the same order (MPI's rule).
//
// A process decides at start-up which it is (communicator()): it initialises MPI only when a
// launcher's environment says it is one rank of several (OMPI_COMM_WORLD_SIZE, PMI_SIZE or
// PMIX_SIZE set, above 1), so a plain `train` never pays MPI's start-up (no singleton MPI_Init).
// A multi-rank launch of a build without MPI is refused, naming the fix.
//
// Failure: MPI's default error handler (MPI_ERRORS_ARE_FATAL) and mpirun end every rank when one
// dies; a rank that stops on an error of its own calls abort(), which ends all of them at once
// with its exit code (never MPI_Finalize with the others still inside a collective).
#pragma once
#include <cstddef>
#include <memory>
#include <string>

namespace forge::dist {

// A collective started and not yet waited for.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  virtual bool test() = 0;  // done? (drives MPI's progress: call it while other work runs)
  virtual void wait() = 0;  // until done
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // This rank's number among the ranks on its machine (picks the GPU of a cuda rank).
  virtual int local_rank() const = 0;
  virtual std::string name() const = 0;  // "single rank", "MPI (Open MPI 4.1.4)"

  // In place, over every rank: data[i] = sum of the ranks' data[i].
  virtual void all_reduce_sum(float* data, size_t count) = 0;
  virtual void all_reduce_sum(double* data, size_t count) = 0;
  virtual void all_reduce_min(double* data, size_t count) = 0;
  // The same sum, nonblocking: `data` must stay untouched until wait() returns.
  virtual std::unique_ptr<PendingCollective> start_all_reduce_sum(float* data, size_t count) = 0;
  // `bytes` of rank `root`'s data to every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Ends every rank now with `exit_code` (a single rank: std::exit).
  [[noreturn]] virtual void abort(int exit_code) = 0;
};

// The process's communicator, made on first use (see the file comment); lives until exit, when
// MPI is finalised.
Communicator& communicator();

// Whether this build can run several ranks (FORGE_MPI).
bool mpi_built_in();

// The broadcast of a string from `root` (its length, then its bytes).
std::string broadcast_string(Communicator& comm, const std::string& text, int root);

}  // namespace forge::dist
