// launch.h: how engine/dist tells a launched rank from a plain process, and the MPI
// communicator's factory (engine/dist/mpi_communicator.cpp; built with FORGE_MPI only).
#pragma once
#include <memory>

#include "engine/dist/communicator.h"

namespace forge::dist {

// The number of ranks a launcher's environment announces (OMPI_COMM_WORLD_SIZE, PMIX_SIZE or
// PMI_SIZE); 1 when none is set.
int launched_ranks();

// MPI_Init and MPI_COMM_WORLD; throws std::logic_error in a build without MPI.
std::unique_ptr<Communicator> make_mpi_communicator();

}  // namespace forge::dist
