// pair_style tpainn: runs an exported T-PaiNN model (python/tpainn/export.py) through the C++ engine
// (csrc/engine.h), the same engine the ASE calculator uses. Usage and design: README.md next to this file.
#pragma once

#include "pair.h"

#include <memory>
#include <vector>

#include "engine.h"

namespace LAMMPS_NS {

class PairTPaiNN : public Pair {
 public:
  explicit PairTPaiNN(class LAMMPS *);
  ~PairTPaiNN() override;

  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  int pack_forward_comm(int, int *, double *, int, int *) override;
  void unpack_forward_comm(int, int, double *) override;
  int pack_reverse_comm(int, int, double *) override;
  void unpack_reverse_comm(int, int *, double *) override;

 private:
  // Several ranks: moves the ghosts' features and their gradients between layers (csrc/ghost_exchange.h) through
  // LAMMPS' forward and reverse communication of this pair style (the pack/unpack methods above).
  struct RankExchange : tpainn::GhostExchange {
    PairTPaiNN *pair;
    explicit RankExchange(PairTPaiNN *pair) : pair(pair) {}
    void forward(float *rows, int64_t width) override { pair->exchange(rows, width, true); }
    void forward(double *rows, int64_t width) override { pair->exchange(rows, width, true); }
    void reverse(float *rows, int64_t width) override { pair->exchange(rows, width, false); }
    void reverse(double *rows, int64_t width) override { pair->exchange(rows, width, false); }
  };

  std::unique_ptr<tpainn::Engine> engine;
  std::vector<int64_t> type_number;    // LAMMPS type -> atomic number (index 0 unused)
  double energy_unit = 1.0;            // model eV -> LAMMPS energy unit

  // Graph buffers reused between steps (float64 / int64 at the engine boundary).
  std::vector<double> positions;
  std::vector<int64_t> numbers, edge_i, edge_j, shifts;
  std::vector<int> local_of_tag;  // one rank: tag -> local index
  // Several ranks, during an exchange: the engine's rows (one per LAMMPS atom), their width and number type.
  void *comm_rows = nullptr;
  int comm_width = 0;
  bool comm_float = false;

  template <typename T> void exchange(T *rows, int64_t width, bool forward);
  template <typename T> int pack_rows(int n, const int *list, int first, double *buf) const;
  template <typename T> void add_rows(int n, const int *list, const double *buf);

  void compute_periodic_graph();  // one rank: local atoms as nodes, edges to ghosts as image shifts
  void compute_decomposed();      // several ranks: local and ghost atoms as nodes, ghost features exchanged
  void allocate();
};

}  // namespace LAMMPS_NS
