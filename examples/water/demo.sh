#!/usr/bin/env bash
# The complete T-PaiNN job, every step a `tpainn` command that a user would run by hand:
#   1. classical q-TIP4P/F water frames (LAMMPS),    4. export both models (TorchScript, for C++/LAMMPS)
#      a quarter with short H–H contacts             5. LAMMPS MD (pair_style tpainn) of both, NPT and at
#   2. pretrain PaiNN on them (energy, forces,          the experimental density, + q-TIP4P/F
#      stress)
#   3. autotune on N revPBE0-D3 frames (replaying    6. density, pressure, diffusion, RDFs, short
#      pretraining frames), and the same network        contacts vs experiment: the report
#      from scratch on the same frames
# Scales (first argument; `make demo SCALE=...`):
#   quick (default, `make demo`): ~30 min on 2 CPU cores. 900 q-TIP4P/F frames, F=32 x 2 layers, N = 50,
#     64 H2O for 0.5 + 5 + 2.5 ps. Outputs: runs/demo/.
#   paper: the same pipeline at production length, for a GPU (used when torch sees one) or a cluster node:
#     5,000 q-TIP4P/F frames, F=128 x 3 layers, N = 90, 128 H2O for 10 + 100 + 100 ps. Outputs: runs/demo-paper/.
# Every step continues where it stopped when the script is run again.
set -euo pipefail
scale=${1:-quick}
here=$(dirname "$0")
case $scale in
  quick)
    out=runs/demo configs=$here/demo n_frames=50
    classical_options="--temperatures 300 350 400 --densities 0.90 1.0 1.10 --frames-per-state 100 --equilibration-ps 2"
    md_options="--n-molecules 64 --equilibration-ps 0.5 --npt-ps 5 --production-ps 2.5" ;;
  paper)
    out=runs/demo-paper configs=$here/paper n_frames=90
    classical_options=""  # the full grid: 5 temperatures x 5 densities, 200 frames each
    md_options="--n-molecules 128 --scale paper" ;;
  *) echo "demo: unknown scale '$scale': choose quick or paper" >&2; exit 2 ;;
esac
# Several MD runs share the cores at step 5; one thread each avoids oversubscription.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
device=$(python -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")

mkdir -p $out/classical
tpainn classical water --model qtip4pf -o $out/classical/qtip4pf-64.h5 $classical_options
# Liquid frames never hold an intermolecular H–H pair closer than ~1.5 Å; a quarter of them get four molecules
# turned into such contacts, so that the network learns the force field's wall there (classical/contacts.py).
tpainn classical contacts $out/classical/qtip4pf-64.h5 -o $out/classical/qtip4pf-64-contacts.h5
tpainn pretrain $configs/pretrain.yaml --resume
tpainn experiment learning-curve $configs/learning-curve.yaml
for arm in autotuned scratch; do
  tpainn export $out/learning-curve/$arm-N$n_frames-seed0/model.pt -o $out/$arm.pt
done

# The DFT frames hold one density and no stress: a model's pressure is an extrapolation, and if its box drifts
# away in NPT the production that follows is not liquid water. So each model also runs NVT at the experimental
# density, where its diffusion and structure compare with experiment whatever its pressure.
pids=()
for arm in autotuned scratch; do
  label=$([ $arm = autotuned ] && echo "autotuned (q-TIP4P/F → $n_frames revPBE0-D3 frames, replay)" || echo "DFT-only ($n_frames revPBE0-D3 frames)")
  tpainn md water --model $out/$arm.pt --label "$label" -o $out/md/$arm $md_options --device $device & pids+=($!)
  tpainn md water --model $out/$arm.pt --label "$label, NVT at 0.997 g/cm³" -o $out/md/$arm-nvt $md_options \
    --npt-ps 0 --density 0.997 --device $device & pids+=($!)
done
tpainn md water --model qtip4pf --label "q-TIP4P/F (classical)" -o $out/md/qtip4pf $md_options
# A failed run is a row of the report naming its LAMMPS error.
for pid in "${pids[@]}"; do wait $pid || echo "demo: an MD run failed (its row in the report names the error)"; done
tpainn analyze $out/md/autotuned $out/md/autotuned-nvt $out/md/scratch $out/md/scratch-nvt $out/md/qtip4pf -o $out/report
echo "demo: learning curve $out/learning-curve/results.md; MD report $out/report/report.md"
