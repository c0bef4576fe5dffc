// The pybind11 module tpainn._C: the cell list (torch tensors in and out) and the inference engine (NumPy
// arrays in and out; csrc/engine.h keeps torch out of its interface).
#include <pybind11/numpy.h>
#include <pybind11/stl.h>  // std::array<bool, 3> from a Python sequence
#include <torch/extension.h>

#include <algorithm>
#include <stdexcept>
#include <tuple>

#include "cell_list.h"
#include "engine.h"
#include "ops/painn_message.h"
#include "ops/painn_message_aten.h"
#include "ops/register_ops.h"

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

using Float64Array = py::array_t<double, py::array::c_style | py::array::forcecast>;
using Int64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

void check_shape(const py::array& a, std::initializer_list<py::ssize_t> shape, const char* name) {
  const bool ok = a.ndim() == py::ssize_t(shape.size()) &&
                  std::equal(shape.begin(), shape.end(), a.shape(), [](py::ssize_t want, py::ssize_t got) {
                    return want < 0 || want == got;
                  });
  if (!ok) throw std::invalid_argument(std::string(name) + " has the wrong shape");
}

tpainn::Atoms atoms_of(const Float64Array& positions, const Int64Array& numbers, const Float64Array& cell) {
  check_shape(positions, {-1, 3}, "positions (expected [N, 3])");
  check_shape(numbers, {positions.shape(0)}, "numbers (expected [N])");
  check_shape(cell, {3, 3}, "cell (expected [3, 3])");
  return {positions.data(), numbers.data(), positions.shape(0), cell.data()};
}

py::dict result_dict(const tpainn::Result& r, bool virial) {
  // compute_images returns energies of the owned atoms only and forces of all atoms.
  py::array_t<double> energies(py::ssize_t(r.energies.size())), forces({py::ssize_t(r.forces.size() / 3), py::ssize_t(3)});
  std::copy(r.energies.begin(), r.energies.end(), energies.mutable_data());
  std::copy(r.forces.begin(), r.forces.end(), forces.mutable_data());
  py::dict out;
  out["energy"] = r.energy;
  out["energies"] = energies;
  out["forces"] = forces;
  if (virial) {
    py::array_t<double> v({3, 3});
    std::copy(r.virial.begin(), r.virial.end(), v.mutable_data());
    out["virial"] = v;
  }
  return out;
}

// The model runs without the GIL; arrays are converted before and the dict built after, with it.
py::dict compute_graph(tpainn::Engine& engine, const Float64Array& positions, const Int64Array& numbers,
                       const Float64Array& cell, const std::array<bool, 3>& pbc, bool virial) {
  const tpainn::Atoms atoms = atoms_of(positions, numbers, cell);
  tpainn::Result r;
  {
    py::gil_scoped_release release;
    r = engine.compute(atoms, pbc, virial);
  }
  return result_dict(r, virial);
}

py::dict compute_edges(tpainn::Engine& engine, const Float64Array& positions, const Int64Array& numbers,
                       const Float64Array& cell, const Int64Array& edge_index, const Int64Array& cell_shifts,
                       bool virial) {
  const tpainn::Atoms atoms = atoms_of(positions, numbers, cell);
  check_shape(edge_index, {2, -1}, "edge_index (expected [2, E])");
  const py::ssize_t n_edges = edge_index.shape(1);
  check_shape(cell_shifts, {n_edges, 3}, "cell_shifts (expected [E, 3])");
  tpainn::Result r;
  {
    py::gil_scoped_release release;
    r = engine.compute(atoms, edge_index.data(), edge_index.data() + n_edges, cell_shifts.data(), n_edges, virial);
  }
  return result_dict(r, virial);
}

// The exchange of compute_decomposed when the copies are periodic images of the call's own atoms: what a
// domain-decomposed caller does between ranks, within one process (tests check the decomposed path with it).
struct ImageExchange : tpainn::GhostExchange {
  const int64_t* owner;  // owner[k - n_owned]: the owned atom that copy k images
  int64_t n_owned, n_atoms;

  ImageExchange(const int64_t* owner, int64_t n_owned, int64_t n_atoms)
      : owner(owner), n_owned(n_owned), n_atoms(n_atoms) {}
  void forward(float* rows, int64_t width) override { copy_from_owners(rows, width); }
  void forward(double* rows, int64_t width) override { copy_from_owners(rows, width); }
  void reverse(float* rows, int64_t width) override { add_to_owners(rows, width); }
  void reverse(double* rows, int64_t width) override { add_to_owners(rows, width); }

  template <typename T>
  void copy_from_owners(T* rows, int64_t width) const {
    for (int64_t k = n_owned; k < n_atoms; ++k) std::copy_n(rows + owner[k - n_owned] * width, width, rows + k * width);
  }
  template <typename T>
  void add_to_owners(T* rows, int64_t width) const {
    for (int64_t k = n_owned; k < n_atoms; ++k)
      for (int64_t c = 0; c < width; ++c) rows[owner[k - n_owned] * width + c] += rows[k * width + c];
  }
};

py::dict compute_images(tpainn::Engine& engine, const Float64Array& positions, const Int64Array& numbers,
                        const Int64Array& owners, const Int64Array& edge_index) {
  check_shape(positions, {-1, 3}, "positions (expected [N, 3])");
  check_shape(numbers, {positions.shape(0)}, "numbers (expected [N])");
  check_shape(owners, {-1}, "owners (expected [N - n_owned])");
  check_shape(edge_index, {2, -1}, "edge_index (expected [2, E])");
  const int64_t n_owned = positions.shape(0) - owners.shape(0);
  const double no_cell[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  for (py::ssize_t k = 0; k < owners.shape(0); ++k)
    if (owners.data()[k] < 0 || owners.data()[k] >= n_owned)
      throw std::invalid_argument("owners must index the first N - len(owners) atoms");
  const tpainn::Atoms atoms{positions.data(), numbers.data(), positions.shape(0), no_cell};
  ImageExchange exchange(owners.data(), n_owned, atoms.n_atoms);
  const py::ssize_t n_edges = edge_index.shape(1);
  tpainn::Result r;
  {
    py::gil_scoped_release release;
    r = engine.compute_decomposed(atoms, n_owned, edge_index.data(), edge_index.data() + n_edges, n_edges, exchange);
  }
  return result_dict(r, false);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "tpainn C++ extension";
  // Checked on import by tpainn._extension: libtorch has no stable ABI across versions.
  m.attr("torch_version") = TPAINN_TORCH_VERSION;
  // torch.ops.tpainn.* for scripting and running fused models in Python (tpainn.model.fused).
  tpainn::ops::register_ops();
  // The ATen form of the operator's kernels (what non-CPU devices run), for the tests to compare with the CPU ones.
  m.def("painn_message_aten", &tpainn::ops::painn_message_aten_in_chunks, py::arg("s"), py::arg("v"), py::arg("x"),
        py::arg("radial"), py::arg("weight"), py::arg("unit_vectors"), py::arg("centres"), py::arg("neighbours"),
        py::arg("edges_per_chunk") = 0);
  m.def("painn_message_backward_aten", &tpainn::ops::painn_message_backward_aten_in_chunks, py::arg("grad_s_out"),
        py::arg("grad_v_out"), py::arg("v"), py::arg("x"), py::arg("radial"), py::arg("weight"),
        py::arg("unit_vectors"), py::arg("centres"), py::arg("neighbours"), py::arg("weight_gradient"),
        py::arg("edges_per_chunk") = 0);
  // The threads the fused kernels run on (tests and benchmarks report it).
  m.def("parallel_threads_used", &tpainn::ops::parallel_threads_used, py::arg("n_tasks"));
  m.def("cell_list", &cell_list, py::arg("positions"), py::arg("cell"), py::arg("pbc"), py::arg("cutoff"),
        py::call_guard<py::gil_scoped_release>(),
        "O(N) cell-list neighbour search; use tpainn.neighbors.neighbor_list, which validates the input.\n"
        "Returns (edge_index [2, E] int64, cell_shifts [E, 3] int64, distances [E] float64).");

  py::class_<tpainn::Engine>(m, "Engine", "The C++ inference engine (csrc/engine.h); use tpainn.TPaiNNCalculator.")
      .def(py::init<const std::string&, const std::string&, const std::string&, double>(), py::arg("path"),
           py::arg("device") = "cpu", py::arg("dtype") = "", py::arg("skin") = 0.0)
      .def_property_readonly("species", [](const tpainn::Engine& e) { return e.metadata().species; })
      .def_property_readonly("atomic_numbers", [](const tpainn::Engine& e) { return e.metadata().atomic_numbers; })
      .def_property_readonly("cutoff", &tpainn::Engine::cutoff)
      .def_property_readonly("n_interactions", [](const tpainn::Engine& e) { return e.metadata().n_interactions; })
      .def_property_readonly("metadata_json", [](const tpainn::Engine& e) { return e.metadata().json; })
      .def_property_readonly("dtype", &tpainn::Engine::dtype)
      .def_property_readonly("device", &tpainn::Engine::device)
      .def_property_readonly("neighbor_list_builds", &tpainn::Engine::neighbor_list_builds)
      .def("compute", &compute_graph, py::arg("positions"), py::arg("numbers"), py::arg("cell"), py::arg("pbc"),
           py::arg("virial"),
           "Energy (eV), energies [N] (eV), forces [N, 3] (eV/Å) and, with virial=True, virial [3, 3] (eV),\n"
           "with the graph built by the engine's own cell list.")
      .def("compute_edges", &compute_edges, py::arg("positions"), py::arg("numbers"), py::arg("cell"),
           py::arg("edge_index"), py::arg("cell_shifts"), py::arg("virial"),
           "As compute, with the caller's neighbour list (both directions; edges beyond the cutoff are dropped).")
      .def("compute_images", &compute_images, py::arg("positions"), py::arg("numbers"), py::arg("owners"),
           py::arg("edge_index"),
           "The domain-decomposed path of the LAMMPS pair style on one process: the last len(owners) atoms are\n"
           "periodic images of owners (indices of the first atoms), edges start at the first atoms only.\n"
           "Energies of the first atoms; forces on all atoms (an image's belong to its owner).");
}
