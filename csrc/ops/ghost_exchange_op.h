// tpainn::ghost_exchange(x, v, anchor, n_atoms): the step between the layers of an exported model
// (python/tpainn/model/fused.py) that gives the copies of atoms owned elsewhere (the ghosts of a LAMMPS rank)
// their owners' features. Given φ(s) x [n_owned, 3F] and v [n_owned, 3, F] of the call's own atoms, it returns
// those of all n_atoms atoms. Without an exchange installed on the calling thread (every call but the engine's
// decomposed path) every atom is the call's own and it returns x and v unchanged. `anchor` is any tensor on the
// path from the energy to the positions that the forces differentiate (the model passes its edge vectors): it
// makes every rank run every exchange's backward (ghost_exchange_op.cpp).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <tuple>

#include "ghost_exchange.h"

namespace tpainn::ops {

extern const char* const kGhostExchangeSchema;
extern const char* const kInstallGhostExchangeSchema;

std::tuple<at::Tensor, at::Tensor> ghost_exchange(const at::Tensor& x, const at::Tensor& v, const at::Tensor& anchor,
                                                  int64_t n_atoms);
// The kernel of tpainn::_install_ghost_exchange: makes the exchange at `address` (0: none) the calling thread's
// and returns the previous one's address. Use InstalledExchange.
int64_t install_ghost_exchange(int64_t address);

// Installs `exchange` for the model calls of this thread while alive (RAII; nests). It goes through the
// dispatcher to the operator's own shared object: tpainn._C and the LAMMPS plugin each carry the operators,
// and a process with both runs the copy that registered them first (csrc/ops/register_ops.h).
class InstalledExchange {
 public:
  explicit InstalledExchange(GhostExchange& exchange);
  ~InstalledExchange();
  InstalledExchange(const InstalledExchange&) = delete;
  InstalledExchange& operator=(const InstalledExchange&) = delete;

 private:
  int64_t previous_;
};

}  // namespace tpainn::ops
