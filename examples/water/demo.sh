#!/usr/bin/env bash
# The complete T-PaiNN job at quick scale (`make demo`; ~30 min on 2 CPU cores), every step a `tpainn`
# command that a user would run by hand:
#   1. classical SPC/Fw water frames (LAMMPS)        4. export both models (TorchScript, for C++/LAMMPS)
#   2. pretrain PaiNN on them                        5. LAMMPS MD (pair_style tpainn) of both, NPT and at
#                                                       the experimental density, + SPC/Fw
#   3. autotune on 50 revPBE0-D3 frames, and the     6. density, diffusion, RDFs vs experiment: the report
#      same network from scratch on the same frames
# Every step continues where it stopped when the script is run again. Outputs: runs/demo/.
# Production scale: examples/water/transfer.sh (learning curves) and `tpainn md water --scale paper`.
set -euo pipefail
out=runs/demo
# Two jobs share the two cores at step 5; one thread each avoids oversubscription.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
here=$(dirname "$0")

mkdir -p $out/classical
tpainn classical water -o $out/classical/spcfw-64.h5 --temperatures 300 350 400 --densities 0.95 1.0 1.05 \
  --frames-per-state 50 --equilibration-ps 2
tpainn pretrain $here/demo/pretrain.yaml --resume
tpainn experiment learning-curve $here/demo/learning-curve.yaml
for arm in autotuned scratch; do
  tpainn export $out/learning-curve/$arm-N50-seed0/model.pt -o $out/$arm.pt
done

# 64 molecules: 0.5 ps NVT, 2 ps NPT (density), 2.5 ps NVT production (diffusion, RDFs); 0.5 fs steps.
md_options="--n-molecules 64 --equilibration-ps 0.5 --npt-ps 2 --production-ps 2.5"
# The DFT frames hold one density and no stress: a model's pressure is an extrapolation, and if its box drifts
# away in NPT the production that follows is not liquid water. So each model also runs NVT at the experimental
# density, where its diffusion and structure compare with experiment whatever its pressure.
nvt_options="--n-molecules 64 --equilibration-ps 0.5 --npt-ps 0 --density 0.997 --production-ps 2.5"
pids=()
for arm in autotuned scratch; do
  label=$([ $arm = autotuned ] && echo "autotuned (SPC/Fw → 50 revPBE0-D3 frames)" || echo "DFT-only (50 revPBE0-D3 frames)")
  tpainn md water --model $out/$arm.pt --label "$label" -o $out/md/$arm $md_options & pids+=($!)
  tpainn md water --model $out/$arm.pt --label "$label, NVT at 0.997 g/cm³" -o $out/md/$arm-nvt $nvt_options & pids+=($!)
done
tpainn md water --model spcfw --label "SPC/Fw (classical)" -o $out/md/spcfw $md_options
# A failed run is a row of the report naming its LAMMPS error.
for pid in "${pids[@]}"; do wait $pid || echo "demo: an MD run failed (its row in the report names the error)"; done
tpainn analyze $out/md/autotuned $out/md/autotuned-nvt $out/md/scratch $out/md/scratch-nvt $out/md/spcfw -o $out/report
echo "demo: learning curve $out/learning-curve/results.md; MD report $out/report/report.md"
