"""Unit conversions of the classical force fields' native units (LAMMPS `units real`, RDKit's MMFF94) to the
eV, Å, bar of every stored frame and run, from ase.units."""

from ase import units

KCAL_MOL_TO_EV = units.kcal / units.mol  # 1 kcal/mol = 0.0433641 eV
ATM_PA = 101325.0  # LAMMPS `units real` pressures are in atm
ATM_TO_EV_PER_A3 = ATM_PA * units.Pascal
ATM_TO_BAR = ATM_PA / 1e5
GRAMS_PER_AMU = units._amu * 1e3
