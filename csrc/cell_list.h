// O(N) cell-list neighbour search. Plain C++ (no torch headers) so it compiles fast and can be reused
// outside Python (e.g. by the LAMMPS plugin); csrc/bindings.cpp converts to and from tensors.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace tpainn {

// One edge i -> j: r_ij = positions[j] - positions[i] + shift @ cell, and distance = |r_ij| < cutoff.
struct Edge {
  int64_t i, j, shift[3];
  double distance;
};

// positions: n_atoms x 3 row-major; cell: 3 x 3 row-major with the lattice vectors as rows (ignored when no
// direction is periodic, must be full rank otherwise). Returns the edges sorted by centre atom i, both
// directions of every pair. Throws std::invalid_argument on bad input.
std::vector<Edge> cell_list(const double* positions, int64_t n_atoms, const double* cell,
                            const std::array<bool, 3>& pbc, double cutoff);

}  // namespace tpainn
