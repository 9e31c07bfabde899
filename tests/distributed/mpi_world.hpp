// The MPI environment of the distributed tests: initialised on first use (the test
// program's main is the common doctest main), finalised when the program exits.
#pragma once

#include "typenet/distributed/mpi.hpp"

namespace typenet::test {

/// All processes of the test job (mpirun -np 2).
inline const distributed::Communicator& world() {
    static distributed::Environment env;  // MPI_Init_thread now, MPI_Finalize at exit
    static distributed::Communicator comm;
    return comm;
}

}  // namespace typenet::test
