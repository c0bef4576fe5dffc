// tpainn's torch operators (torch.ops.tpainn.*), used by models exported with fused=True
// (python/tpainn/model/fused.py). Both shared objects that run models register them: the Python extension
// tpainn._C on import and the engine (so the LAMMPS plugin) before loading a model.
#pragma once

namespace tpainn::ops {

// Registers the operators unless this process already has them (from the other shared object: the LAMMPS
// plugin can be loaded into a Python process that imported tpainn._C). Idempotent and thread-safe.
void register_ops();

}  // namespace tpainn::ops
