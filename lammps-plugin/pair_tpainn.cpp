#include "pair_tpainn.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <string>

#include "engine.h"

using namespace LAMMPS_NS;

PairTPaiNN::PairTPaiNN(LAMMPS *lmp) : Pair(lmp)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
}

PairTPaiNN::~PairTPaiNN()
{
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
    memory->destroy(cutghost);
  }
}

void PairTPaiNN::allocate()
{
  allocated = 1;
  const int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  memory->create(cutsq, n, n, "pair:cutsq");
  memory->create(cutghost, n, n, "pair:cutghost");
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) setflag[i][j] = 0;
  type_number.assign(n, 0);
}

// pair_style tpainn MODEL [device cpu|cuda|cuda:K] [dtype float32|float64]
void PairTPaiNN::settings(int narg, char **arg)
{
  if (narg < 1 || narg % 2 != 1)
    error->all(FLERR, "Illegal pair_style tpainn command: expected MODEL [device cpu|cuda] [dtype float32|float64]");
  std::string device = "cpu", dtype;
  for (int k = 1; k < narg; k += 2) {
    if (strcmp(arg[k], "device") == 0) device = arg[k + 1];
    else if (strcmp(arg[k], "dtype") == 0) dtype = arg[k + 1];
    else error->all(FLERR, "Unknown pair_style tpainn keyword '{}' (expected device or dtype)", arg[k]);
  }
  try {
    engine = std::make_unique<tpainn::Engine>(arg[0], device, dtype);
  } catch (const std::exception &err) {
    error->all(FLERR, "pair_style tpainn: cannot load model: {}", err.what());
  }
  layers = static_cast<int>(engine->metadata().n_interactions);
  // A new model may have other species: its type mapping must be given again.
  if (allocated)
    for (int i = 1; i <= atom->ntypes; i++)
      for (int j = i; j <= atom->ntypes; j++) setflag[i][j] = 0;
}

// pair_coeff * * ELEM1 ELEM2 ...: one model element symbol per LAMMPS atom type.
void PairTPaiNN::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  const int ntypes = atom->ntypes;
  if (narg != 2 + ntypes || strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR, "pair_coeff for pair_style tpainn must be '* *' followed by {} element symbol(s), one per "
               "atom type; got {} symbol(s)", ntypes, std::max(narg - 2, 0));
  const tpainn::Metadata &meta = engine->metadata();
  std::string known;
  for (const auto &s : meta.species) known += (known.empty() ? "" : " ") + s;
  for (int t = 1; t <= ntypes; t++) {
    const auto found = std::find(meta.species.begin(), meta.species.end(), std::string(arg[1 + t]));
    if (found == meta.species.end())
      error->all(FLERR, "pair_coeff: element '{}' (atom type {}) is not among the model's species: {}", arg[1 + t], t, known);
    type_number[t] = meta.atomic_numbers[found - meta.species.begin()];
  }
  for (int i = 1; i <= ntypes; i++)
    for (int j = i; j <= ntypes; j++) setflag[i][j] = 1;
}

void PairTPaiNN::init_style()
{
  if (!engine) error->all(FLERR, "pair_style tpainn: no model loaded");
  if (atom->tag_enable == 0) error->all(FLERR, "pair_style tpainn requires atom IDs");
  if (force->newton_pair == 0)
    error->all(FLERR, "pair_style tpainn requires newton_pair on (forces on ghost atoms are sent home by reverse "
               "communication); remove 'newton off' from the input");
  // Bonded pairs are dropped from the neighbour list (special factor 0) or flagged in it (other factors), but
  // the model must see every atom within its cutoff, bonded or not: molecular inputs need factors of 1.
  for (int k = 1; k < 4; ++k)
    if (atom->molecular != Atom::ATOMIC && (force->special_lj[k] != 1.0 || force->special_coul[k] != 1.0))
      error->all(FLERR, "pair_style tpainn sees bonded neighbours like any other atom: a molecular atom style "
                 "needs 'special_bonds lj/coul 1.0 1.0 1.0' (now lj {} {} {}, coul {} {} {})",
                 force->special_lj[1], force->special_lj[2], force->special_lj[3],
                 force->special_coul[1], force->special_coul[2], force->special_coul[3]);
  // The model works in eV and Å (metal); real differs only in the energy unit (kcal/mol), and the virial is an
  // energy, so one factor converts energies, forces and the virial. LAMMPS turns the virial into atm itself.
  const std::string units = update->unit_style;
  if (units == "metal") energy_unit = 1.0;
  else if (units == "real") energy_unit = utils::get_conversion_factor(utils::ENERGY, utils::METAL2REAL);
  else error->all(FLERR, "pair_style tpainn supports units metal and real only, not '{}'", units);

  // One rank: every ghost is an image of a local atom, so the graph is built on local atoms with cell shifts
  // (exact for any box size, cost = local atoms). Several ranks: the local energies depend on atoms up to
  // layers * cutoff away, so those atoms come as ghosts, with neighbour lists of their own (ghostneigh), and
  // their forces go home by reverse communication; the virial is then sum(x * f) over local and ghost atoms.
  const bool shell = comm->nprocs > 1;
  ghostneigh = shell ? 1 : 0;
  no_virial_fdotr_compute = shell ? 0 : 1;
  if (shell) comm->cutghostuser = std::max(comm->cutghostuser, layers * engine->cutoff() + neighbor->skin);
  neighbor->add_request(this, shell ? NeighConst::REQ_FULL | NeighConst::REQ_GHOST : NeighConst::REQ_FULL);
}

double PairTPaiNN::init_one(int i, int j)
{
  if (setflag[i][j] == 0) error->all(FLERR, "All pair coeffs are not set (pair_coeff * * ELEM ...)");
  cutghost[i][j] = cutghost[j][i] = engine->cutoff();
  return engine->cutoff();
}

void PairTPaiNN::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  if (vflag_atom || cvflag_atom) error->all(FLERR, "pair_style tpainn does not compute per-atom virials (stress/atom)");
  try {
    if (comm->nprocs > 1) compute_ghost_shell();
    else compute_periodic_graph();
  } catch (const std::exception &err) {
    error->one(FLERR, "pair_style tpainn: {}", err.what());
  }
  if (vflag_fdotr) virial_fdotr_compute();
}

void PairTPaiNN::compute_periodic_graph()
{
  const int nlocal = atom->nlocal;
  double **x = atom->x;
  const tagint *tag = atom->tag;
  positions.resize(3 * nlocal);
  numbers.resize(nlocal);
  for (int i = 0; i < nlocal; i++) {
    std::copy_n(x[i], 3, &positions[3 * i]);
    numbers[i] = type_number[atom->type[i]];
  }

  // Owner of every ghost by atom ID (all atoms are local on one rank), then the image shift n with
  // x_ghost = x_owner + n @ cell, solved row by row from the triangular LAMMPS cell.
  const tagint max_tag = nlocal ? *std::max_element(tag, tag + nlocal) : 0;
  local_of_tag.assign(max_tag + 1, -1);
  for (int i = 0; i < nlocal; i++) local_of_tag[tag[i]] = i;
  const double *h = domain->h;  // xprd, yprd, zprd, yz, xz, xy
  const double cell[9] = {h[0], 0.0, 0.0, h[5], h[1], 0.0, h[4], h[3], h[2]};

  edge_i.clear();
  edge_j.clear();
  shifts.clear();
  const int *ilist = list->ilist, *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;
  for (int ii = 0; ii < list->inum; ii++) {
    const int i = ilist[ii];
    for (int jj = 0; jj < numneigh[i]; jj++) {
      const int j = firstneigh[i][jj] & NEIGHMASK;
      const int owner = j < nlocal ? j : local_of_tag[tag[j]];
      const double d[3] = {x[j][0] - x[owner][0], x[j][1] - x[owner][1], x[j][2] - x[owner][2]};
      const double nz = std::round(d[2] / h[2]);
      const double ny = std::round((d[1] - nz * h[3]) / h[1]);
      const double nx = std::round((d[0] - nz * h[4] - ny * h[5]) / h[0]);
      edge_i.push_back(i);
      edge_j.push_back(owner);
      shifts.insert(shifts.end(), {int64_t(nx), int64_t(ny), int64_t(nz)});
    }
  }
  const tpainn::Atoms atoms{positions.data(), numbers.data(), nlocal, cell};
  const tpainn::Result r =
      engine->compute(atoms, edge_i.data(), edge_j.data(), shifts.data(), int64_t(edge_i.size()), vflag_global != 0);
  double **f = atom->f;
  for (int i = 0; i < nlocal; i++) {
    for (int d = 0; d < 3; d++) f[i][d] += energy_unit * r.forces[3 * i + d];
    if (eflag_global) eng_vdwl += energy_unit * r.energies[i];
    if (eflag_atom) eatom[i] += energy_unit * r.energies[i];
  }
  if (vflag_global) {
    // LAMMPS order xx, yy, zz, xy, xz, yz; the engine's virial is a row-major 3x3 (symmetric up to round-off).
    const auto &w = r.virial;
    const double v[6] = {w[0], w[4], w[8], 0.5 * (w[1] + w[3]), 0.5 * (w[2] + w[6]), 0.5 * (w[5] + w[7])};
    for (int k = 0; k < 6; k++) virial[k] += energy_unit * v[k];
  }
}

// Only atoms within `layers` hops (edges shorter than the cutoff) of a local atom influence local energies, and
// only edges into atoms within layers - 1 hops carry messages that reach them: the rest of the ghost shell
// (most of it, the shell is sized for straight-line distances plus the skin) is left out of the graph.
void PairTPaiNN::compute_ghost_shell()
{
  const int nlocal = atom->nlocal, nall = nlocal + atom->nghost;
  if (nlocal == 0) return;  // an empty sub-domain: no energy of its own, so no forces either
  double **x = atom->x;
  const double cutsq_model = engine->cutoff() * engine->cutoff();
  const int *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;
  auto within_cutoff = [&](int i, int j) {
    const double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
    return dx * dx + dy * dy + dz * dz < cutsq_model;
  };

  // Breadth-first search from the local atoms; node numbers follow the order atoms are reached.
  hops.assign(nall, -1);
  lammps_index.clear();
  for (int i = 0; i < nlocal; i++) {
    hops[i] = 0;
    lammps_index.push_back(i);
  }
  for (size_t head = 0; head < lammps_index.size(); head++) {
    const int i = lammps_index[head];
    if (hops[i] == layers) break;  // reached in breadth-first order: all later ones are this far too
    for (int jj = 0; jj < numneigh[i]; jj++) {
      const int j = firstneigh[i][jj] & NEIGHMASK;
      if (hops[j] < 0 && within_cutoff(i, j)) {
        hops[j] = hops[i] + 1;
        lammps_index.push_back(j);
      }
    }
  }
  const int n = static_cast<int>(lammps_index.size());
  if (!warned_shell && comm->me == 0 && n > 4 * nlocal) {
    warned_shell = true;
    error->warning(FLERR, "pair_style tpainn: each rank's graph holds {} atoms for {} local ones (ghost shell of {} "
                   "layers x cutoff); for boxes this small, one rank with more threads (OMP_NUM_THREADS) is faster",
                   n, nlocal, layers);
  }
  node_of.assign(nall, -1);
  for (int k = 0; k < n; k++) node_of[lammps_index[k]] = k;

  positions.resize(3 * n);
  numbers.resize(n);
  edge_i.clear();
  edge_j.clear();
  for (int k = 0; k < n; k++) {
    const int i = lammps_index[k];
    std::copy_n(x[i], 3, &positions[3 * k]);
    numbers[k] = type_number[atom->type[i]];
    if (hops[i] == layers) continue;
    for (int jj = 0; jj < numneigh[i]; jj++) {
      const int j = firstneigh[i][jj] & NEIGHMASK;
      if (!within_cutoff(i, j)) continue;
      edge_i.push_back(k);
      edge_j.push_back(node_of[j]);
    }
  }
  const double no_cell[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};  // ghosts carry their image positions: no shifts
  const tpainn::Atoms atoms{positions.data(), numbers.data(), n, no_cell};
  const tpainn::Result r = engine->compute_owned(atoms, nlocal, edge_i.data(), edge_j.data(), int64_t(edge_i.size()));
  double **f = atom->f;
  for (int k = 0; k < n; k++)
    for (int d = 0; d < 3; d++) f[lammps_index[k]][d] += energy_unit * r.forces[3 * k + d];
  for (int i = 0; i < nlocal; i++) {
    if (eflag_global) eng_vdwl += energy_unit * r.energies[i];
    if (eflag_atom) eatom[i] += energy_unit * r.energies[i];
  }
}
