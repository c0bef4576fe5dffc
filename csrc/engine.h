// The inference engine: runs an exported T-PaiNN model (python/tpainn/export.py) in libtorch. The ASE
// calculator (through csrc/bindings.cpp) and the LAMMPS pair style both call this one class.
//
// Plain C++ interface (torch stays behind a pointer to the implementation): callers compile without
// torch headers. Units: positions and cell Å, energies eV, forces eV/Å, virial eV; float64 in and out
// whatever the network's dtype. Errors: std::invalid_argument (bad model file or bad input, with the file
// or atom named; AtomError where atoms are named), std::runtime_error (device problems).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ghost_exchange.h"

namespace tpainn {

// Must match FORMAT_VERSION in python/tpainn/export.py.
constexpr int64_t kExportFormatVersion = 4;

// What the engine knows about the loaded model (read from the scripted model's own attributes).
struct Metadata {
  std::vector<std::string> species;     // element symbols, in the model's species order
  std::vector<int64_t> atomic_numbers;  // same order as species
  double cutoff = 0.0;                  // Å
  int64_t n_interactions = 0;           // receptive field = n_interactions * cutoff
  int64_t n_features = 0;               // F: each atom carries scalar [F] and vector [3, F] features
  std::string dtype;                    // the exported network dtype: "float32" or "float64"
  std::string json;                     // tpainn_metadata.json as written by export.py (units, provenance)
};

struct Result {
  double energy = 0.0;                // eV
  std::vector<double> energies;       // [N] eV per atom
  std::vector<double> forces;         // [N * 3] eV/Å, row-major
  std::array<double, 9> virial{};     // eV, row-major, -dE/dstrain; zero unless requested
};

// Atoms shared by both entry points: positions [N * 3] row-major Å; cell [9] row-major, lattice vectors
// as rows (ignored where no direction is periodic); atomic numbers [N].
struct Atoms {
  const double* positions;
  const int64_t* numbers;
  int64_t n_atoms;
  const double* cell;
};

// An invalid_argument about particular atoms (overlapping, not finite), which what() names by their rows in the
// caller's arrays. A caller with its own numbering (LAMMPS: atom IDs) re-words it with describe(): the message is
// text[0] atom(rows[0]) text[1] atom(rows[1]) ... text[n].
class AtomError : public std::invalid_argument {
 public:
  AtomError(std::vector<std::string> text, std::vector<int64_t> rows)
      : std::invalid_argument(compose(text, rows, [](int64_t row) { return std::to_string(row); })),
        text_(std::move(text)), rows_(std::move(rows)) {}
  const std::vector<int64_t>& rows() const { return rows_; }
  template <class Name>
  std::string describe(Name name) const { return compose(text_, rows_, name); }

 private:
  template <class Name>
  static std::string compose(const std::vector<std::string>& text, const std::vector<int64_t>& rows, Name name) {
    std::string out = text.empty() ? "" : text[0];
    for (size_t k = 0; k < rows.size(); ++k) out += name(rows[k]) + (k + 1 < text.size() ? text[k + 1] : "");
    return out;
  }
  std::vector<std::string> text_;
  std::vector<int64_t> rows_;
};

class Engine {
 public:
  // device: "cpu", "cuda" or "cuda:K"; dtype: network dtype "float32" / "float64", or "" for the exported
  // one. skin (Å): the neighbour list is built at cutoff + skin and reused while no atom has moved more
  // than skin / 2 (and the cell, periodicity and atom count are unchanged).
  Engine(const std::string& path, const std::string& device = "cpu", const std::string& dtype = "",
         double skin = 0.0);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const Metadata& metadata() const;
  double cutoff() const { return metadata().cutoff; }
  const std::string& dtype() const;  // the dtype the network runs in
  std::string device() const;
  int64_t neighbor_list_builds() const;  // how many times the own neighbour list was built (reuse tests)

  // Builds the graph with the O(N) cell list (csrc/cell_list.h), reusing it within the skin.
  Result compute(const Atoms& atoms, const std::array<bool, 3>& pbc, bool virial);
  // With the caller's neighbour list, e.g. LAMMPS': edges i -> j as two arrays (edge_i, edge_j) and integer
  // image multiples shifts [E * 3], r_ij = r_j - r_i + shift @ cell. Edges longer than the cutoff are
  // dropped, so a list built with a skin can be passed as is. Both directions of every pair must be listed.
  Result compute(const Atoms& atoms, const int64_t* edge_i, const int64_t* edge_j, const int64_t* shifts,
                 int64_t n_edges, bool virial);
  // For a domain-decomposed caller (the LAMMPS pair style on several MPI ranks): atoms [0, n_owned) are its
  // own, the others are copies of atoms owned elsewhere (or periodic images of its own), at their image
  // positions: no shifts, the cell is unused. Edges i -> j as in compute() above, but only from owned atoms
  // (i < n_owned) and with every edge of an owned atom listed. The model's forward runs with n_owned, and its
  // exchange step between layers (tpainn::ghost_exchange, csrc/ops/ghost_exchange_op.h) fills the copies'
  // features from their owners through `exchange.forward`; in the backward pass `exchange.reverse` sends their
  // gradients home, so the caller's copies need only reach one cutoff. Fused exports only (the exchange step of
  // unfused ones is plain TorchScript: std::invalid_argument).
  // Result: the owned atoms' energies (.energy, .energies [n_owned]) and the forces on all atoms, -dE/dx
  // of the energy summed over every rank's owned atoms; the caller sends the copies' forces to their owners.
  // No virial (the caller has it as sum(x * f) over all atoms, copies at their image positions included).
  // Every rank must call this at each step, also with no atoms, since the exchanges are collective.
  Result compute_decomposed(const Atoms& atoms, int64_t n_owned, const int64_t* edge_i, const int64_t* edge_j,
                            int64_t n_edges, GhostExchange& exchange);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tpainn
