// The only translation unit that includes torch (each one costs ~20 s to compile): tensors in and out.
#include <pybind11/stl.h>  // std::array<bool, 3> from a Python sequence
#include <torch/extension.h>

#include <algorithm>
#include <stdexcept>
#include <tuple>

#include "cell_list.h"

namespace {

// Runs without the GIL (see call_guard below): torch::Tensor arguments were converted before and are
// converted back after, with the GIL held.
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> cell_list(const torch::Tensor& positions,
                                                                  const torch::Tensor& cell,
                                                                  const std::array<bool, 3>& pbc, double cutoff) {
  // Raw pointers are read below, so insist on the layout tpainn.neighbors.neighbor_list already produces.
  for (const auto* x : {&positions, &cell})
    if (!x->device().is_cpu() || x->scalar_type() != torch::kFloat64 || !x->is_contiguous())
      throw std::invalid_argument("positions and cell must be contiguous float64 CPU tensors");
  if (positions.dim() != 2 || positions.size(1) != 3) throw std::invalid_argument("positions must have shape (N, 3)");
  if (cell.dim() != 2 || cell.size(0) != 3 || cell.size(1) != 3)
    throw std::invalid_argument("cell must have shape (3, 3)");

  const std::vector<tpainn::Edge> edges =
      tpainn::cell_list(positions.data_ptr<double>(), positions.size(0), cell.data_ptr<double>(), pbc, cutoff);
  const int64_t n_edges = static_cast<int64_t>(edges.size());
  const auto int64 = torch::TensorOptions().dtype(torch::kInt64);
  torch::Tensor edge_index = torch::empty({2, n_edges}, int64);
  torch::Tensor shifts = torch::empty({n_edges, 3}, int64);
  torch::Tensor distances = torch::empty({n_edges}, torch::TensorOptions().dtype(torch::kFloat64));
  int64_t* ij = edge_index.data_ptr<int64_t>();
  int64_t* s = shifts.data_ptr<int64_t>();
  double* d = distances.data_ptr<double>();
  for (int64_t e = 0; e < n_edges; ++e) {
    ij[e] = edges[e].i;
    ij[n_edges + e] = edges[e].j;
    std::copy_n(edges[e].shift, 3, s + 3 * e);
    d[e] = edges[e].distance;
  }
  return {edge_index, shifts, distances};
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "tpainn C++ extension";
  // Checked on import by tpainn._extension: libtorch has no stable ABI across versions.
  m.attr("torch_version") = TPAINN_TORCH_VERSION;
  m.def("cell_list", &cell_list, py::arg("positions"), py::arg("cell"), py::arg("pbc"), py::arg("cutoff"),
        py::call_guard<py::gil_scoped_release>(),
        "O(N) cell-list neighbour search; use tpainn.neighbors.neighbor_list, which validates the input.\n"
        "Returns (edge_index [2, E] int64, cell_shifts [E, 3] int64, distances [E] float64).");
}
