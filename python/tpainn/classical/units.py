"""Unit conversions of the classical force fields' native units (LAMMPS `units real`, RDKit's MMFF94) to the
eV, Å units of every stored frame, from ase.units."""

from ase import units

KCAL_MOL_TO_EV = units.kcal / units.mol  # 1 kcal/mol = 0.0433641 eV
ATM_TO_EV_PER_A3 = 101325.0 * units.Pascal  # LAMMPS `units real` pressures are in atm
