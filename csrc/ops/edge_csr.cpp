#include "edge_csr.h"

#include <stdexcept>
#include <string>

namespace tpainn::ops {

void check_atom_indices(const int64_t* index, int64_t n_edges, int64_t n_atoms) {
  for (int64_t e = 0; e < n_edges; ++e)
    if (index[e] < 0 || index[e] >= n_atoms)
      throw std::out_of_range("edge " + std::to_string(e) + " refers to atom " + std::to_string(index[e]) +
                              ", outside [0, " + std::to_string(n_atoms) + ")");
}

EdgeCsr edge_csr(const int64_t* index, int64_t n_edges, int64_t n_atoms) {
  check_atom_indices(index, n_edges, n_atoms);
  EdgeCsr csr{std::vector<int64_t>(n_edges), std::vector<int64_t>(n_atoms + 1, 0)};
  for (int64_t e = 0; e < n_edges; ++e) ++csr.ptr[index[e] + 1];
  for (int64_t a = 0; a < n_atoms; ++a) csr.ptr[a + 1] += csr.ptr[a];
  std::vector<int64_t> next(csr.ptr.begin(), csr.ptr.end() - 1);
  for (int64_t e = 0; e < n_edges; ++e) csr.order[next[index[e]]++] = e;
  return csr;
}

}  // namespace tpainn::ops
