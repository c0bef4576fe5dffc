// Edges grouped by one of their end atoms (compressed sparse rows), so that a kernel can give each thread a
// range of atoms and accumulate into them without atomics.
#pragma once

#include <cstdint>
#include <vector>

namespace tpainn::ops {

// The edges of atom a are order[ptr[a]] ... order[ptr[a + 1] - 1], in increasing edge id.
struct EdgeCsr {
  std::vector<int64_t> order;  // [E] edge ids
  std::vector<int64_t> ptr;    // [N + 1]
};

// Throws std::out_of_range unless every index[e] is in [0, n_atoms).
void check_atom_indices(const int64_t* index, int64_t n_edges, int64_t n_atoms);

// Counting sort of edges by index[e] in [0, n_atoms), O(E + N); checks the indices as above.
EdgeCsr edge_csr(const int64_t* index, int64_t n_edges, int64_t n_atoms);

}  // namespace tpainn::ops
