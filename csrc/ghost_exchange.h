// The caller's communication between layers of a domain-decomposed run (Engine::compute_decomposed), which the
// model's exchange step (the operator tpainn::ghost_exchange, csrc/ops/ghost_exchange_op.h) calls. Plain C++: the
// LAMMPS pair style implements it without torch headers.
#pragma once

#include <cstdint>

namespace tpainn {

// `rows` is [n_atoms * width] numbers of the network's dtype (float32 networks exchange floats: half the
// traffic), row-major, one row per atom of the call, atoms [0, n_owned) owned.
class GhostExchange {
 public:
  virtual ~GhostExchange() = default;
  // Fills the rows of the copies with their owners' rows (owned rows are set on every rank).
  virtual void forward(float* rows, int64_t width) = 0;
  virtual void forward(double* rows, int64_t width) = 0;
  // Adds the copies' rows to their owners' rows, wherever the owners are (the copies' rows are then unused).
  virtual void reverse(float* rows, int64_t width) = 0;
  virtual void reverse(double* rows, int64_t width) = 0;
};

}  // namespace tpainn
