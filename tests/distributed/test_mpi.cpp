// Communicator: collectives checked against values computed by hand for any number
// of processes; MPI errors as exceptions.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mpi_world.hpp"
#include "typenet/distributed/mpi.hpp"

using namespace typenet;
using namespace typenet::distributed;

TEST_CASE("Communicator: rank, size, sums, averages, min and max") {
    const Communicator& comm = test::world();
    const int P = comm.size(), r = comm.rank();
    REQUIRE(P >= 2);  // run by mpirun -np 2
    CHECK(r >= 0);
    CHECK(r < P);
    CHECK(comm.is_root() == (r == 0));

    // float: element i of rank r is r * 10 + i  ->  sum P*i + 10*P(P-1)/2, mean i + 5(P-1)
    std::vector<float> f(7);
    for (std::size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(r * 10 + static_cast<int>(i));
    std::vector<float> g = f;
    comm.allreduce_sum(f.data(), f.size());
    comm.allreduce_average(g.data(), g.size());
    for (std::size_t i = 0; i < f.size(); ++i) {
        CHECK(f[i] == doctest::Approx(P * static_cast<double>(i) + 10.0 * P * (P - 1) / 2));
        CHECK(g[i] == doctest::Approx(static_cast<double>(i) + 5.0 * (P - 1)));
    }
    std::vector<double> d = {0.5 * r, 1.0};
    comm.allreduce_sum(d.data(), d.size());
    CHECK(d[0] == doctest::Approx(0.25 * P * (P - 1)));
    CHECK(d[1] == P);
    d[0] = 0.5 * r;
    comm.allreduce_average(d.data(), 1);
    CHECK(d[0] == doctest::Approx(0.25 * (P - 1)));

    CHECK(comm.allreduce_value<std::uint64_t>(100 + static_cast<std::uint64_t>(r), ReduceOp::min) == 100);
    CHECK(comm.allreduce_value<std::uint64_t>(100 + static_cast<std::uint64_t>(r), ReduceOp::max) ==
          static_cast<std::uint64_t>(99 + P));
    CHECK(comm.allreduce_value<std::int64_t>(-1) == -P);
}

TEST_CASE("Communicator: broadcast from any rank, allgather of unequal parts, barrier") {
    const Communicator& comm = test::world();
    const int P = comm.size(), r = comm.rank();
    std::vector<float> v = {float(r), float(r) + 0.5f, -float(r)};
    comm.broadcast(v.data(), v.size(), P - 1);
    CHECK(v == std::vector<float>{float(P - 1), float(P - 1) + 0.5f, -float(P - 1)});

    std::string s = r == 0 ? std::string("from rank zero") : std::string(5, 'x');
    comm.broadcast(s);
    CHECK(s == "from rank zero");

    // rank r gives r + 1 copies of r
    std::vector<std::int32_t> mine(static_cast<std::size_t>(r + 1), r);
    std::vector<std::size_t> counts;
    const std::vector<std::int32_t> all = comm.allgather(mine.data(), mine.size(), &counts);
    std::vector<std::int32_t> expected;
    for (int k = 0; k < P; ++k) expected.insert(expected.end(), static_cast<std::size_t>(k + 1), k);
    CHECK(all == expected);
    REQUIRE(counts.size() == static_cast<std::size_t>(P));
    for (int k = 0; k < P; ++k) CHECK(counts[static_cast<std::size_t>(k)] == static_cast<std::size_t>(k + 1));
    comm.barrier();
}

TEST_CASE("MPI errors become mpi_error with MPI's error string") {
    const Communicator& comm = test::world();
    float x = 1.0f;
    try {
        comm.broadcast(&x, 1, comm.size() + 5);  // no such root: every process fails alike
        FAIL("no exception");
    } catch (const mpi_error& e) {
        const std::string w = e.what();
        CHECK(w.find("MPI_Bcast") != std::string::npos);
        CHECK(w.find("root") != std::string::npos);  // Open MPI: "MPI_ERR_ROOT: invalid root"
        CHECK(e.code() != 0);
    }
    // A second Environment leaves MPI to the first: still usable after it is gone.
    { Environment again; }
    CHECK(Environment::active());
    CHECK(comm.allreduce_value(1.0) == doctest::Approx(comm.size()));
}
