"""Classical force-field data for pretraining: flexible water in LAMMPS, MMFF94 (RDKit) for QM9 molecules."""
