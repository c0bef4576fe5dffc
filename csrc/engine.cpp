#include "engine.h"

#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <charconv>
#include <cstdio>
#include <numeric>
#include <stdexcept>

#include "cell_list.h"
#include "ops/ghost_exchange_op.h"
#include "ops/register_ops.h"

namespace tpainn {
namespace {

// Written by python/tpainn/export.py: "<format tag> <format version>".
const char* const kFormatFile = "tpainn_format";
const char* const kFormatTag = "tpainn-exported-model";
// The full metadata (units, provenance, ...) as JSON, passed through unparsed to callers that want it.
const char* const kMetadataFile = "tpainn_metadata.json";

void check_format(const std::string& path, const std::string& format) {
  if (format.empty())
    throw std::invalid_argument(path + " is a TorchScript file but not a T-PaiNN model (it has no " + kFormatFile + ")");
  // "TAG VERSION", parsed without iostreams: on a CUDA torch 2.11 wheel, extracting an integer from a stream in
  // this library crashed (the process mixes libstdc++ locale facets), so nothing here touches std::locale.
  const size_t space = format.find(' ');
  const std::string tag = format.substr(0, space);
  int64_t version = -1;
  if (space != std::string::npos) {
    const char* first = format.data() + space + 1;
    if (std::from_chars(first, format.data() + format.size(), version).ec != std::errc()) version = -1;
  }
  if (tag != kFormatTag) throw std::invalid_argument(path + " is not a T-PaiNN model (format '" + format + "')");
  if (version != kExportFormatVersion)
    throw std::invalid_argument(path + " has export format version " + std::to_string(version) +
                                ", but this tpainn reads version " + std::to_string(kExportFormatVersion) +
                                ": export the model again with this version");
}

[[noreturn]] void throw_load_error(const std::string& path, const std::string& what) {
  const std::string unknown_op = "Unknown builtin op: ";
  const size_t op = what.find(unknown_op + "tpainn::");
  if (op != std::string::npos) {
    const size_t name = op + unknown_op.size();
    throw std::invalid_argument(path + " is a fused T-PaiNN export: it calls " +
                                what.substr(name, what.find_first_of(". \n", name) - name) +
                                ", which this tpainn build does not have. Update tpainn, or export the model again "
                                "with fused=False");
  }
  throw std::invalid_argument(path + " is not a TorchScript file (training outputs are converted with "
                              "`tpainn export MODEL -o OUT.pt`): " + what.substr(0, what.find('\n')));
}

// What the engine needs is an attribute of the scripted PaiNN itself (tpainn/model/potential.py).
Metadata read_metadata(const torch::jit::Module& model) {
  Metadata m;
  for (const auto& symbol : model.attr("species").toListRef()) m.species.push_back(symbol.toStringRef());
  const torch::Tensor numbers = model.attr("atomic_numbers").toTensor().to(torch::kCPU).contiguous();
  m.atomic_numbers.assign(numbers.data_ptr<int64_t>(), numbers.data_ptr<int64_t>() + numbers.numel());
  m.cutoff = model.attr("cutoff").toDouble();
  m.n_interactions = model.attr("n_interactions").toInt();
  m.n_features = model.attr("representation").toModule().attr("n_features").toInt();
  m.dtype = (*model.parameters().begin()).scalar_type() == torch::kFloat32 ? "float32" : "float64";
  return m;
}

// Closer atoms are almost certainly an input error (wrong units, duplicated atoms); the model would
// return finite but meaningless numbers there, and r = 0 gives NaN.
constexpr double kMinDistance = 0.1;  // Å

torch::ScalarType scalar_type(const std::string& dtype) {
  if (dtype == "float32") return torch::kFloat32;
  if (dtype == "float64") return torch::kFloat64;
  throw std::invalid_argument("dtype must be 'float32' or 'float64', got '" + dtype + "'");
}

torch::Device parse_device(const std::string& name) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    throw std::invalid_argument("device must be 'cpu', 'cuda' or 'cuda:K', got '" + name + "'");
  }
  if (device.is_cuda() && !torch::cuda::is_available())
    throw std::runtime_error("device '" + name + "' requested, but this torch was built without CUDA or sees no GPU");
  if (!device.is_cpu() && !device.is_cuda()) throw std::invalid_argument("unsupported device '" + name + "'");
  return device;
}

// Edges kept for one model call: i's then j's (the layout of edge_index [2, E]) and shifts [E * 3].
struct Graph {
  std::vector<int64_t> index_i, index_j, shifts;
};

// The atoms sorted along a Z-order (Morton) curve of cutoff/2 bins, with the edges renumbered to match. Every
// edge makes the model read its neighbour's features; with atoms in arbitrary order (ASE, built boxes) these
// reads miss the caches once the features outgrow them, and the fused model's per-atom cost grew by 30 % from
// 192 to 5,184 atoms. In this order an atom's neighbours are mostly close to it in memory.
struct SpatialOrder {
  std::vector<int64_t> order;  // sorted position -> the caller's atom index
  std::vector<double> positions;
  std::vector<int64_t> numbers;
  Atoms atoms;
  Graph graph;

  SpatialOrder(const Atoms& a, const Graph& g, double bin) : order(a.n_atoms), atoms(a) {
    const int64_t n = a.n_atoms;
    std::array<double, 3> lowest{0.0, 0.0, 0.0};
    for (int64_t i = 0; i < n; ++i)
      for (int d = 0; d < 3; ++d) lowest[d] = std::min(lowest[d], a.positions[3 * i + d]);
    std::vector<uint64_t> key(n, 0);
    for (int64_t i = 0; i < n; ++i)
      for (int d = 0; d < 3; ++d) {
        const uint64_t cell = uint64_t((a.positions[3 * i + d] - lowest[d]) / bin) & 0x1fffff;  // 21 bits
        for (int bit = 0; bit < 21; ++bit) key[i] |= ((cell >> bit) & 1) << (3 * bit + d);
      }
    std::iota(order.begin(), order.end(), int64_t{0});
    std::stable_sort(order.begin(), order.end(), [&key](int64_t x, int64_t y) { return key[x] < key[y]; });
    std::vector<int64_t> rank(n);
    positions.resize(3 * n);
    numbers.resize(n);
    for (int64_t k = 0; k < n; ++k) {
      rank[order[k]] = k;
      std::copy_n(a.positions + 3 * order[k], 3, positions.data() + 3 * k);
      numbers[k] = a.numbers[order[k]];
    }
    atoms.positions = positions.data();
    atoms.numbers = numbers.data();
    graph.shifts = g.shifts;
    graph.index_i.reserve(g.index_i.size());
    graph.index_j.reserve(g.index_j.size());
    for (size_t e = 0; e < g.index_i.size(); ++e) {
      graph.index_i.push_back(rank[g.index_i[e]]);
      graph.index_j.push_back(rank[g.index_j[e]]);
    }
  }

  // Per-atom results back in the caller's order (energy and virial do not depend on it).
  void restore(Result& r) const {
    const Result sorted = r;
    for (size_t k = 0; k < order.size(); ++k) {
      r.energies[order[k]] = sorted.energies[k];
      std::copy_n(sorted.forces.data() + 3 * k, 3, r.forces.data() + 3 * order[k]);
    }
  }
};

}  // namespace

struct Engine::Impl {
  Metadata meta;
  torch::jit::Module module;
  torch::Device device{torch::kCPU};
  std::string dtype;
  double skin = 0.0;
  std::vector<int64_t> species_index;  // atomic number -> species index, -1 if unknown
  bool fills_ghosts = false;           // the model's exchange step calls tpainn::ghost_exchange (fused exports)

  // Neighbour list at cutoff + skin and the state it was built for.
  std::vector<Edge> candidates;
  std::vector<double> built_positions;
  std::array<double, 9> built_cell{};
  std::array<bool, 3> built_pbc{};
  int64_t builds = 0;

  void load(const std::string& path) {
    if (std::FILE* file = std::fopen(path.c_str(), "rb")) {
      std::fclose(file);
    } else {
      throw std::invalid_argument(path + ": no such file or not readable");
    }
    torch::jit::ExtraFilesMap extra{{kFormatFile, ""}, {kMetadataFile, ""}};
    ops::register_ops();  // fused exports call torch.ops.tpainn.*
    try {
      module = torch::jit::load(path, device, extra);
    } catch (const c10::Error& err) {
      throw_load_error(path, err.what_without_backtrace());
    } catch (const torch::jit::ErrorReport& err) {  // the file's code does not compile here, e.g. an unknown op
      throw_load_error(path, err.what());
    }
    check_format(path, extra[kFormatFile]);
    meta = read_metadata(module);
    meta.json = extra[kMetadataFile];
    fills_ghosts = module.attr("representation").toModule().attr("ghost_exchange").toModule().attr("fills_ghosts").toBool();
    module.eval();
    for (size_t k = 0; k < meta.atomic_numbers.size(); ++k) {
      const int64_t z = meta.atomic_numbers[k];
      if (int64_t(species_index.size()) <= z) species_index.resize(z + 1, -1);
      species_index[z] = int64_t(k);
    }
  }

  // Runs the network in `dtype`. The network is the model's child modules (representation, readout); the
  // float64 reference energies and energy scale are buffers of the model itself and keep their precision.
  void cast_network() {
    for (const auto& child : module.named_children()) {
      torch::jit::Module network = child.value;  // a handle: casting it casts the submodule in place
      network.to(scalar_type(dtype));
    }
  }

  std::string species_list() const {
    std::string out;
    for (const auto& s : meta.species) out += (out.empty() ? "" : ", ") + s;
    return "[" + out + "]";
  }

  void check_atoms(const Atoms& a) const {
    if (a.n_atoms < 0) throw std::invalid_argument("number of atoms must be >= 0");
    for (int64_t i = 0; i < a.n_atoms; ++i) {
      const double* r = a.positions + 3 * i;
      if (!std::isfinite(r[0]) || !std::isfinite(r[1]) || !std::isfinite(r[2]))
        throw AtomError({"position of atom ", " is not finite"}, {i});
      const int64_t z = a.numbers[i];
      if (z < 0 || z >= int64_t(species_index.size()) || species_index[z] < 0)
        throw AtomError({"atom ", " has atomic number " + std::to_string(z) + ", which is not among the model's species " +
                                     species_list()},
                        {i});
    }
    for (int k = 0; k < 9; ++k)
      if (!std::isfinite(a.cell[k])) throw std::invalid_argument("the cell is not finite");
  }

  bool list_still_valid(const Atoms& a, const std::array<bool, 3>& pbc) const {
    if (builds == 0 || int64_t(built_positions.size()) != 3 * a.n_atoms || pbc != built_pbc ||
        !std::equal(built_cell.begin(), built_cell.end(), a.cell))
      return false;
    const double limit2 = 0.25 * skin * skin;
    for (int64_t k = 0; k < a.n_atoms; ++k) {
      const double dx = a.positions[3 * k] - built_positions[3 * k];
      const double dy = a.positions[3 * k + 1] - built_positions[3 * k + 1];
      const double dz = a.positions[3 * k + 2] - built_positions[3 * k + 2];
      if (dx * dx + dy * dy + dz * dz > limit2) return false;
    }
    return true;
  }

  void update_neighbor_list(const Atoms& a, const std::array<bool, 3>& pbc) {
    if (list_still_valid(a, pbc)) return;
    candidates = cell_list(a.positions, a.n_atoms, a.cell, pbc, meta.cutoff + skin);
    built_positions.assign(a.positions, a.positions + 3 * a.n_atoms);
    std::copy_n(a.cell, 9, built_cell.begin());
    built_pbc = pbc;
    ++builds;
  }

  // Appends edge i -> j (image shift s) to the graph if it is within the cutoff at the current positions.
  void keep_if_within_cutoff(const Atoms& a, int64_t i, int64_t j, const int64_t* s, Graph& g) const {
    const double* ri = a.positions + 3 * i;
    const double* rj = a.positions + 3 * j;
    const double* c = a.cell;
    double d2 = 0.0;
    for (int k = 0; k < 3; ++k) {
      const double x = rj[k] - ri[k] + double(s[0]) * c[k] + double(s[1]) * c[3 + k] + double(s[2]) * c[6 + k];
      d2 += x * x;
    }
    if (d2 >= meta.cutoff * meta.cutoff) return;
    if (d2 < kMinDistance * kMinDistance)
      throw AtomError({"atoms ", " and ", std::string(i == j ? " (a periodic image)" : "") + " are " +
                                              std::to_string(std::sqrt(d2)) + " Å apart, closer than " +
                                              std::to_string(kMinDistance) + " Å: overlapping atoms"},
                      {i, j});
    g.index_i.push_back(i);
    g.index_j.push_back(j);
    g.shifts.insert(g.shifts.end(), s, s + 3);
  }

  // The caller's edges within the cutoff; shifts may be null (all zero).
  Graph caller_graph(const Atoms& a, const int64_t* edge_i, const int64_t* edge_j, const int64_t* shifts,
                     int64_t n_edges) const {
    static const int64_t no_shift[3] = {0, 0, 0};
    Graph g;
    for (int64_t e = 0; e < n_edges; ++e) {
      if (edge_i[e] < 0 || edge_i[e] >= a.n_atoms || edge_j[e] < 0 || edge_j[e] >= a.n_atoms)
        throw std::invalid_argument("edge " + std::to_string(e) + " refers to an atom outside [0, " +
                                    std::to_string(a.n_atoms) + ")");
      keep_if_within_cutoff(a, edge_i[e], edge_j[e], shifts ? shifts + 3 * e : no_shift, g);
    }
    return g;
  }

  // A device copy of the caller's memory: from_blob does not copy, .to(..., copy=true) gives a tensor that owns
  // its memory, on the device.
  torch::Tensor on_device(const torch::Tensor& caller_memory) const {
    return caller_memory.to(device, /*non_blocking=*/false, /*copy=*/true);
  }

  // The model's inputs for one graph; `positions` is the device copy passed to the model.
  std::vector<torch::jit::IValue> model_inputs(const Atoms& a, const Graph& g, bool forces, bool virial,
                                               torch::Tensor& positions) const {
    const int64_t n = a.n_atoms, n_edges = int64_t(g.index_i.size());
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
    const auto i64 = torch::TensorOptions().dtype(torch::kInt64);
    torch::Tensor edge_index = torch::empty({2, n_edges}, i64);
    std::copy(g.index_i.begin(), g.index_i.end(), edge_index.data_ptr<int64_t>());
    std::copy(g.index_j.begin(), g.index_j.end(), edge_index.data_ptr<int64_t>() + n_edges);
    positions = on_device(torch::from_blob(const_cast<double*>(a.positions), {n, 3}, f64));
    return {
        positions,
        on_device(torch::from_blob(const_cast<int64_t*>(a.numbers), {n}, i64)),
        on_device(torch::from_blob(const_cast<double*>(a.cell), {1, 3, 3}, f64)),
        edge_index.to(device),
        on_device(torch::from_blob(const_cast<int64_t*>(g.shifts.data()), {n_edges, 3}, i64)),
        torch::zeros({n}, i64.device(device)),
        int64_t{1},  // n_graphs
        forces,      // compute_forces
        virial};     // compute_stress (also gives the virial)
  }

  Result run(const Atoms& a, const Graph& g, bool virial) {
    const SpatialOrder sorted(a, g, 0.5 * meta.cutoff);
    Result r = run_in_given_order(sorted.atoms, sorted.graph, virial);
    sorted.restore(r);
    return r;
  }

  Result run_in_given_order(const Atoms& a, const Graph& g, bool virial) {
    torch::Tensor positions;
    return call_model(model_inputs(a, g, true, virial, positions), a.n_atoms, a.n_atoms, virial);
  }

  // The model's forward with atoms [0, n_owned) its own and the exchange installed for the copies' features
  // (the model's exchange step between layers, csrc/ops/ghost_exchange_op.h); the energy of the owned atoms is
  // differentiated with respect to all positions. The atoms stay in the caller's order (unlike run()): the
  // exchange works on the caller's rows, and LAMMPS, the caller this is for, sorts its atoms spatially itself
  // (atom_modify sort, at the start of every run by default).
  Result run_decomposed(const Atoms& a, const Graph& g, int64_t n_owned, GhostExchange& exchange) {
    torch::Tensor positions;
    std::vector<torch::jit::IValue> inputs = model_inputs(a, g, true, false, positions);
    inputs.emplace_back();  // heads: the model's readout
    inputs.emplace_back(n_owned);
    const ops::InstalledExchange installed(exchange);
    return call_model(std::move(inputs), n_owned, a.n_atoms, false);
  }

  // The model's energy, the first n_energies atom energies, the forces on n_forces atoms and the virial if asked.
  Result call_model(std::vector<torch::jit::IValue> inputs, int64_t n_energies, int64_t n_forces, bool virial) {
    // The profiling executor re-profiles and re-specialises when the edge count changes (every few MD
    // steps) and its autodiff graphs ran slower than the plain interpreter: run unoptimised. The
    // setting is thread-local and restored on return.
    torch::jit::GraphOptimizerEnabledGuard plain_interpreter(false);
    const auto out = module.forward(std::move(inputs)).toGenericDict();
    auto fetch = [&out](const char* key) {
      return out.at(key).toTensor().detach().to(torch::kCPU, torch::kFloat64).contiguous();
    };
    Result r;
    r.energy = fetch("energy").item<double>();
    const torch::Tensor energies = fetch("energies"), forces = fetch("forces");
    r.energies.assign(energies.data_ptr<double>(), energies.data_ptr<double>() + n_energies);
    r.forces.assign(forces.data_ptr<double>(), forces.data_ptr<double>() + 3 * n_forces);
    if (virial) std::copy_n(fetch("virial").data_ptr<double>(), 9, r.virial.begin());
    return r;
  }
};

Engine::Engine(const std::string& path, const std::string& device, const std::string& dtype, double skin)
    : impl_(std::make_unique<Impl>()) {
  if (!(skin >= 0.0) || !std::isfinite(skin)) throw std::invalid_argument("skin must be >= 0 and finite");
  impl_->device = parse_device(device);
  impl_->skin = skin;
  if (!dtype.empty()) scalar_type(dtype);  // reject a bad name before the (slow) load
  impl_->load(path);
  impl_->dtype = dtype.empty() ? impl_->meta.dtype : dtype;
  impl_->cast_network();
}

Engine::~Engine() = default;

const Metadata& Engine::metadata() const { return impl_->meta; }
const std::string& Engine::dtype() const { return impl_->dtype; }
std::string Engine::device() const { return impl_->device.str(); }
int64_t Engine::neighbor_list_builds() const { return impl_->builds; }

Result Engine::compute(const Atoms& atoms, const std::array<bool, 3>& pbc, bool virial) {
  impl_->check_atoms(atoms);
  impl_->update_neighbor_list(atoms, pbc);
  Graph g;
  for (const Edge& e : impl_->candidates) impl_->keep_if_within_cutoff(atoms, e.i, e.j, e.shift, g);
  return impl_->run(atoms, g, virial);
}

Result Engine::compute(const Atoms& atoms, const int64_t* edge_i, const int64_t* edge_j, const int64_t* shifts,
                       int64_t n_edges, bool virial) {
  impl_->check_atoms(atoms);
  return impl_->run(atoms, impl_->caller_graph(atoms, edge_i, edge_j, shifts, n_edges), virial);
}

Result Engine::compute_decomposed(const Atoms& atoms, int64_t n_owned, const int64_t* edge_i, const int64_t* edge_j,
                                  int64_t n_edges, GhostExchange& exchange) {
  if (n_owned < 0 || n_owned > atoms.n_atoms) throw std::invalid_argument("n_owned must be in [0, n_atoms]");
  if (!impl_->fills_ghosts)
    throw std::invalid_argument("the model is an unfused export (plain TorchScript operators), which cannot fetch the "
                                "features of atoms owned elsewhere: export it fused (the default) to run on several "
                                "ranks");
  for (int64_t e = 0; e < n_edges; ++e)
    if (edge_i[e] < 0 || edge_i[e] >= n_owned)
      throw std::invalid_argument("edge " + std::to_string(e) + " starts at atom " + std::to_string(edge_i[e]) +
                                  ", which is not owned (owned: [0, " + std::to_string(n_owned) + "))");
  impl_->check_atoms(atoms);
  return impl_->run_decomposed(atoms, impl_->caller_graph(atoms, edge_i, edge_j, nullptr, n_edges), n_owned,
                               exchange);
}

}  // namespace tpainn
