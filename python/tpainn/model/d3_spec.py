"""The D3 specification string of `model.dispersion` (see tpainn/dispersion.py for the term itself).

Kept apart from the D3 computation so that the model (which records the spec in its hyperparameters) does not
import dftd3 or the data layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ase.units import Bohr

DEFAULT_CUTOFF_A = 15.0
# dftd3's default coordination-number cutoff (40 bohr). LAMMPS counts neighbours within its pair list only, so
# both codes get min(this, cutoff): the same CN, hence the same C6, in both.
CN_CUTOFF_A = 40.0 * Bohr
_SPEC = re.compile(r"d3\((zero|bj)\):([a-z0-9+\-]+)(?::([0-9.]+(?:e[+-]?[0-9]+)?))?")
# LAMMPS calls zero damping "original" ("zero" would clash with pair_style zero inside hybrid).
LAMMPS_DAMPING = {"zero": "original", "bj": "bj"}


@dataclass(frozen=True)
class D3:
    damping: str  # "zero" or "bj"
    functional: str
    cutoff: float  # Å, radius of the pair sum

    def __str__(self) -> str:
        return f"d3({self.damping}):{self.functional}:{self.cutoff:g}"

    @property
    def cn_cutoff(self) -> float:
        return min(self.cutoff, CN_CUTOFF_A)

    def lammps_style(self) -> str:
        """The `pair_style dispersion/d3` arguments (LAMMPS metal units: Å)."""
        return f"dispersion/d3 {LAMMPS_DAMPING[self.damping]} {self.functional} {self.cutoff!r} {self.cn_cutoff!r}"

    def damping_parameters(self):
        from dftd3.interface import RationalDampingParam, ZeroDampingParam

        kind = ZeroDampingParam if self.damping == "zero" else RationalDampingParam
        return kind(method=self.functional)  # atm=False: no three-body term


def parse(text: Optional[str]) -> Optional[D3]:
    """The D3 of a spec string, or None for "none"; ValueError in one line for anything else."""
    if text is None or str(text).strip().lower() == "none":
        return None
    match = _SPEC.fullmatch(str(text).strip().lower())
    if not match:
        raise ValueError(
            f"dispersion {text!r}: expected 'none' or 'd3(zero|bj):FUNCTIONAL[:CUTOFF_A]', e.g. 'd3(zero):revpbe0'"
        )
    d3 = D3(match[1], match[2], float(match[3]) if match[3] else DEFAULT_CUTOFF_A)
    if not 0 < d3.cutoff < 1000:
        raise ValueError(f"dispersion {text!r}: the cutoff must be in (0, 1000) Å")
    try:
        d3.damping_parameters()
    except RuntimeError:
        raise ValueError(
            f"dispersion {text!r}: dftd3 has no {d3.damping}-damping D3 parameters for {d3.functional!r}"
        ) from None
    return d3


def canonical(text: Optional[str]) -> str:
    """"none" or the spec with its cutoff written out, e.g. "d3(zero):revpbe0:15"."""
    return str(parse(text) or "none")
