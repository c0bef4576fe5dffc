#!/usr/bin/env bash
# Benchmark-only environment with SchNetPack 2.1.1, for the schnetpack column of benchmarks/engine_speed.py.
# SchNetPack is never a dependency of the project: it lives in .venv-bench/ (git-ignored) next to .venv/.
#
# Usage: benchmarks/schnetpack-env.sh            (idempotent; re-running only re-checks)
#        .venv-bench/bin/python benchmarks/engine_speed.py
#
# .venv-bench has no torch/ase/tpainn of its own: a .pth file appends the main venv's site-packages to its
# sys.path, so the benchmark compares both models on the very same torch build. Workarounds for SchNetPack
# 2.1.1 next to torch 2.13 (shared notes, "Installing SchNetPack 2.1.1 next to torch 2.13"):
#  - schnetpack pins sympy<=1.12, torch 2.13 needs sympy>=1.13.3, and pip "solves" that by replacing torch:
#    install schnetpack with --no-deps, add the runtime deps it imports, and constrain every package the main
#    venv already has (torch, numpy, sympy, ...) to the main venv's version, so nothing there is shadowed.
#  - the other pitfalls (T_co, torch.load, TorchNeighborList) are handled in engine_speed.py itself.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MAIN="${MAIN_VENV:-$ROOT/.venv}"
BENCH="${BENCH_VENV:-$ROOT/.venv-bench}"
[ -x "$MAIN/bin/python" ] || { echo "no $MAIN/bin/python: run 'make install' first" >&2; exit 1; }

# Same interpreter as the main venv (the .pth trick needs the same Python minor version), and no pip or
# setuptools of its own: those would shadow the main venv's (torch pins setuptools). The main venv's pip
# installs into it with --python.
[ -x "$BENCH/bin/python" ] || "$MAIN/bin/python" -m venv --without-pip "$BENCH"
pip=("$MAIN/bin/python" -m pip --python "$BENCH/bin/python")
main_site="$("$MAIN/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
bench_site="$("$BENCH/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$main_site" > "$bench_site/tpainn-main-venv.pth"

constraints="$BENCH/constraints.txt"
"$MAIN/bin/python" -m pip list --format=freeze | grep -viE '^(pip|tpainn)==' > "$constraints"

"${pip[@]}" install -q --no-deps schnetpack==2.1.1
# What `import schnetpack` and its ASE calculator need (its full list also has training/CLI/dev tools:
# tensorboard, pre-commit, black, ... left out). sympy comes from the main venv (1.14 works).
# pip then lists schnetpack's unmet pins (black, pre-commit, tensorboard, sympy<=1.12): expected, harmless.
"${pip[@]}" install -q -c "$constraints" \
    pytorch-lightning torchmetrics hydra-core hydra-colorlog rich fasteners dirsync torch-ema \
    "matscipy>=1.1.0" h5py pyyaml tqdm progressbar2 tensorboardX

"$BENCH/bin/python" - <<'EOF'
import torch, torch.utils.data.dataloader as dl, typing
dl.T_co = getattr(dl, "T_co", typing.TypeVar("T_co", covariant=True))  # removed in torch 2.13, see engine_speed.py
import schnetpack, tpainn
print(f"schnetpack {schnetpack.__version__}, torch {torch.__version__} ({torch.__file__}), tpainn from {tpainn.__file__}")
EOF
