"""The report of one or more analysed runs: PNG plots, a markdown and an HTML page, and results.json.

Every run is one row of the table, next to experiment, so models (autotuned, DFT-only, classical) are
compared in one place.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
# Figures made without pyplot: no global backend is set or changed for the calling program.
from matplotlib.figure import Figure

from tpainn.analysis.diffusion import A2_PER_PS_IN_1E9_M2_PER_S

# Liquid water at 298 K, 1 bar (../shared/notes/water-reference.md): Kell density, Mills/Holz D,
# X-ray O–O first peak (Skinner et al. 2013); neutron-diffraction intermolecular H–H first peak (Soper 2013).
EXPERIMENT = {"density_g_cm3": 0.997, "D_1e-9_m2_s": 2.30, "OO_peak_A": 2.8, "OO_peak_height": 2.5, "HH_peak_A": 2.4}
# At that density the pressure is 1 bar; liquid water has no intermolecular H–H pair below ≈ 1.8 Å (g_HH = 0) and
# no intermolecular O–H pair below ≈ 1.5 Å: a good model shows 0 in the short-range columns.
# The H–H column shows a model's short-range flaw at a glance: hydrogens of neighbouring molecules that come
# closer than water's ~2.4 Å (an intermolecular peak near 1.2 Å) are no liquid water.
COLUMNS = ("model", "ρ (g/cm³)", "P (bar)", "D_PBC (1e-9 m²/s)", "Yeh–Hummer (1e-9 m²/s)", "D_∞ (1e-9 m²/s)",
           "O–O peak r (Å)", "O–O peak g", "H–H peak r (Å)", "max g_HH < 1.6 Å",
           "short contacts per frame: H–H < 1.6 Å / O–H < 1.3 Å (% of frames)", "run")  # fmt: skip
PLOTS = {"density": "density.png", "msd": "msd.png", "rdf": "rdf.png"}


def write_report(results: list[dict], out_dir: str | Path) -> dict[str, Path]:
    """Write report.md, report.html, results.json and the plots to `out_dir`; returns their paths by kind."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = {kind: path for kind, path in _plots(results, out).items() if path is not None}
    rows = [_row(result) for result in results] + [_experiment_row()]
    paths = {"markdown": out / "report.md", "html": out / "report.html", "json": out / "results.json", **plots}
    paths["markdown"].write_text(_markdown(rows, plots))
    paths["html"].write_text(_html(rows, plots))
    paths["json"].write_text(json.dumps(results, indent=1))
    return paths


def _row(result: dict) -> list[str]:
    if "error" in result:
        return [result["model"], *["—"] * (len(COLUMNS) - 2), f"{result['run_dir']}: not analysed: {result['error']}"]
    density, diffusion = result.get("density"), result.get("diffusion")
    oo, hh = result.get("rdf", {}).get("O-O"), result.get("rdf", {}).get("H-H")
    pressure, contacts = result.get("pressure"), result.get("contacts")
    return [
        result["model"],
        _density(density) if density else _fixed(result.get("fixed_density_g_cm3")),
        _pressure(pressure) if pressure else "—",
        _pm(diffusion["D_pbc_1e-9_m2_s"], diffusion["D_pbc_error_1e-9_m2_s"], 2) if diffusion else "—",
        f"{diffusion['correction_1e-9_m2_s']:.2f}" if diffusion else "—",
        _pm(diffusion["D_inf_1e-9_m2_s"], diffusion["D_pbc_error_1e-9_m2_s"], 2) if diffusion else "—",
        _number(oo["first_peak_A"], 2) if oo else "—",
        _number(oo["first_peak_height"], 2) if oo else "—",
        _number(hh["first_peak_A"], 2) if hh else "—",
        _number(hh.get("max_g_below_1.6_A"), 2) if hh else "—",
        _contacts(contacts) if contacts else "—",
        result["run_dir"] + "".join(f"; {name} not analysed: {why}" for name, why in result.get("errors", {}).items()),
    ]


def _density(density: dict) -> str:
    text = _pm(density["mean_g_cm3"], density["error_g_cm3"], 4)
    if density["drifting"]:
        text += f" (not stationary: drifts {density['drift_g_cm3_per_ps']:+.4f} g/cm³ per ps)"
    if not density.get("stage_complete", True):
        text += f" (run stopped within NPT: {density['equilibration_ps'] + density['averaged_ps']:.1f} ps logged)"
    return text


def _pressure(pressure: dict) -> str:
    text = _pm(pressure["mean_bar"], pressure["error_bar"], 0)
    return text if pressure["ensemble"] == "nvt" else f"{text} ({pressure['ensemble'].upper()})"


def _contacts(contacts: dict) -> str:
    """'H–H mean (% frames) / O–H mean (% frames)'; exactly 0 only where no frame has such a pair."""
    def one(kind: dict) -> str:
        mean, fraction = kind["mean_per_frame"], kind["fraction_of_frames"]
        count = "0" if mean == 0 else "< 0.01" if mean < 0.005 else f"{mean:.2f}"
        share = "0 %" if fraction == 0 else "< 1 %" if fraction < 0.005 else f"{100 * fraction:.0f} %"
        return f"{count} ({share})"

    return f"{one(contacts['H-H'])} / {one(contacts['O-H'])}"


def _fixed(density_g_cm3: float | None) -> str:
    return "—" if density_g_cm3 is None else f"{density_g_cm3:.3f} (NVT, fixed)"


def _experiment_row() -> list[str]:
    e = EXPERIMENT
    return ["experiment (298 K)", f"{e['density_g_cm3']:.3f}", "1", "—", "—", f"{e['D_1e-9_m2_s']:.2f}",
            f"≈ {e['OO_peak_A']}", f"≈ {e['OO_peak_height']}", f"≈ {e['HH_peak_A']}", "0", "0 (0 %) / 0 (0 %)", ""]  # fmt: skip


def _pm(value: float, error: float, digits: int) -> str:
    return f"{value:.{digits}f} ± {error:.{digits}f}"


def _number(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _markdown(rows: list[list[str]], plots: dict[str, Path]) -> str:
    lines = ["# Liquid water: T-PaiNN runs next to experiment", "", "| " + " | ".join(COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]  # fmt: skip
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", "Errors: density by block averaging after equilibration (a density still drifting then is marked"
              " not stationary: the box has not settled, so its mean is no equilibrium density); D by the spread over"
              " molecules.",
              "D_∞ = D_PBC + Yeh–Hummer finite-size correction (cubic box, experimental viscosity unless set).",
              "P: LAMMPS' thermo `press` (bar; `real` units' atm converted) averaged over the production stage at fixed"
              " volume (NVT unless marked), error by block averaging; in a run with NPT that volume is where NPT ended,"
              " so P is near the barostat's target if the density had settled, and without NPT it is the pressure at the packed density.",
              "Short range (intermolecular pairs only; liquid water has none, a good model shows 0): the largest H–H"
              " g(r) below 1.6 Å; per trajectory frame, the mean number of H–H pairs closer than 1.6 Å and of O–H pairs"
              " closer than 1.3 Å, with the percentage of frames that have any.", ""]  # fmt: skip
    lines += [f"![{kind}]({path.name})" for kind, path in plots.items()]
    return "\n".join(lines) + "\n"


def _html(rows: list[list[str]], plots: dict[str, Path]) -> str:
    def cells(row: list[str], tag: str) -> str:
        return "<tr>" + "".join(f"<{tag}>{html.escape(cell)}</{tag}>" for cell in row) + "</tr>"

    table = "\n".join([cells(list(COLUMNS), "th"), *(cells(row, "td") for row in rows)])
    images = "\n".join(f'<p><img src="{html.escape(p.name)}" alt="{html.escape(k)}"></p>' for k, p in plots.items())
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>T-PaiNN water report</title>\n'
        "<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:4px 8px}</style></head>\n"
        f"<body><h1>Liquid water: T-PaiNN runs next to experiment</h1>\n<table>\n{table}\n</table>\n{images}\n"
        "</body></html>\n"
    )


def _plots(results: list[dict], out: Path) -> dict[str, Path | None]:
    return {
        "density": _plot_density([r for r in results if "density" in r], out / PLOTS["density"]),
        "msd": _plot_msd([r for r in results if "diffusion" in r], out / PLOTS["msd"]),
        "rdf": _plot_rdf([r for r in results if "rdf" in r], out / PLOTS["rdf"]),
    }


def _plot_density(results: list[dict], path: Path) -> Path | None:
    if not results:
        return None
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for result in results:
        density = result["density"]
        line = ax.plot(density["time_ps"], density["density_g_cm3"], lw=0.8, label=result["model"])[0]
        ax.axvline(density["equilibration_ps"], color=line.get_color(), ls=":", lw=0.8)
    ax.axhline(EXPERIMENT["density_g_cm3"], color="k", ls="--", lw=0.8, label="experiment")
    ax.set(xlabel="time in NPT (ps)", ylabel="density (g/cm³)", title="density (dotted: end of equilibration)")
    return _save(fig, ax, path)


def _plot_msd(results: list[dict], path: Path) -> Path | None:
    if not results:
        return None
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for result in results:
        d = result["diffusion"]
        line = ax.plot(d["lag_ps"], d["msd_A2"], label=result["model"])[0]
        window = np.asarray(d["fit_window_ps"])
        slope_A2_per_ps = 6 * d["D_pbc_1e-9_m2_s"] / A2_PER_PS_IN_1E9_M2_PER_S
        ax.plot(window, d["fit_intercept_A2"] + slope_A2_per_ps * window, color=line.get_color(), ls="--", lw=2)
    ax.set(xlabel="lag (ps)", ylabel="oxygen MSD (Å²)", title="MSD (dashed: linear fit, 6 D_PBC t)")
    return _save(fig, ax, path)


def _plot_rdf(results: list[dict], path: Path) -> Path | None:
    if not results:
        return None
    fig = Figure(figsize=(13, 4))
    axes = fig.subplots(1, 3)
    for ax, pair in zip(axes, ("O-O", "O-H", "H-H")):
        for result in results:
            ax.plot(result["rdf"][pair]["r_A"], result["rdf"][pair]["g"], label=result["model"])
        ax.axhline(1.0, color="k", lw=0.5)
        ax.set(xlabel="r (Å)", ylabel=f"g(r), {pair} intermolecular")
    axes[0].plot([EXPERIMENT["OO_peak_A"]], [EXPERIMENT["OO_peak_height"]], "k*", ms=10, label="experiment, first peak")
    return _save(fig, axes[0], path)


def _save(fig, legend_ax, path: Path) -> Path:
    legend_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
