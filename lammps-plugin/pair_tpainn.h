// pair_style tpainn: runs an exported T-PaiNN model (python/tpainn/export.py) through the C++ engine
// (csrc/engine.h), the same engine the ASE calculator uses. Usage and design: README.md next to this file.
#pragma once

#include "pair.h"

#include <memory>
#include <vector>

namespace tpainn {
class Engine;
}

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

 private:
  std::unique_ptr<tpainn::Engine> engine;
  std::vector<int64_t> type_number;    // LAMMPS type -> atomic number (index 0 unused)
  double energy_unit = 1.0;            // model eV -> LAMMPS energy unit
  int layers = 1;                      // message-passing layers: receptive field = layers * cutoff
  bool warned_shell = false;           // the ghost-shell cost warning is given once

  // Graph buffers reused between steps (float64 / int64 at the engine boundary).
  std::vector<double> positions;
  std::vector<int64_t> numbers, edge_i, edge_j, shifts;
  std::vector<int> local_of_tag;                // one rank: tag -> local index
  std::vector<int> hops, lammps_index, node_of;  // several ranks: hops from local atoms, node <-> LAMMPS index

  void compute_periodic_graph();  // one rank: local atoms as nodes, edges to ghosts as image shifts
  void compute_ghost_shell();     // several ranks: local + ghost atoms as nodes
  void allocate();
};

}  // namespace LAMMPS_NS
