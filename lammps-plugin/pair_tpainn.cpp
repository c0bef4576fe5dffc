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
  }
}

void PairTPaiNN::allocate()
{
  allocated = 1;
  const int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  memory->create(cutsq, n, n, "pair:cutsq");
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
  // Between layers on several ranks, each ghost receives its owner's φ(s) [3F] and v [3, F] (and sends their
  // gradients back): the most any forward or reverse communication of this style carries per atom.
  comm_forward = comm_reverse = static_cast<int>(6 * engine->metadata().n_features);
  // One rank computes its virial itself (init_style() says why). Set here, not in init_style(): pair_style hybrid
  // reads its sub-styles' flags right after their settings(), and would otherwise take the virial as sum(x * f).
  no_virial_fdotr_compute = comm->nprocs > 1 ? 0 : 1;
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

// A string value of the exported metadata (tpainn_metadata.json, written by json.dumps), or "" where the key is absent.
static std::string metadata_string(const std::string &json, const std::string &key)
{
  const std::string quoted = "\"" + key + "\": \"";
  const size_t start = json.find(quoted);
  if (start == std::string::npos) return "";
  const size_t begin = start + quoted.size();
  return json.substr(begin, json.find('"', begin) - begin);
}

void PairTPaiNN::init_style()
{
  if (!engine) error->all(FLERR, "pair_style tpainn: no model loaded");
  // A model trained on DFT minus D3 (python/tpainn/dispersion.py) is wrong without D3 added back: in the same
  // pair style, overlaid. Damping, functional and cutoff are those of the metadata (tpainn md writes them).
  const std::string d3 = metadata_string(engine->metadata().json, "dispersion");
  if (!d3.empty() && d3 != "none" &&
      !(utils::strmatch(force->pair_style, "^hybrid/overlay") && force->pair_match("^dispersion/d3", 0)))
    error->all(FLERR, "pair_style tpainn: the model was trained without D3 dispersion ({}) and runs only with it added "
               "back: use 'pair_style hybrid/overlay tpainn MODEL dispersion/d3 ...' with that damping, functional "
               "and cutoff, as `tpainn md` writes it", d3);
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
  // (exact for any box size). Several ranks: the graph holds the local and ghost atoms, the ghosts'
  // features come from their owners between layers, and the forces on ghosts go home by reverse
  // communication; the virial is then sum(x * f) over local and ghost atoms (no_virial_fdotr_compute, set in
  // settings()).
  neighbor->add_request(this, NeighConst::REQ_FULL);
}

double PairTPaiNN::init_one(int i, int j)
{
  if (setflag[i][j] == 0) error->all(FLERR, "All pair coeffs are not set (pair_coeff * * ELEM ...)");
  return engine->cutoff();
}

void PairTPaiNN::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  if (vflag_atom || cvflag_atom) error->all(FLERR, "pair_style tpainn does not compute per-atom virials (stress/atom)");
  try {
    if (comm->nprocs > 1) compute_decomposed();
    else compute_periodic_graph();
  } catch (const tpainn::AtomError &err) {
    // The engine's rows are LAMMPS' local (and ghost) indices, which mean nothing to the user: name atom IDs.
    const tagint *tag = atom->tag;
    error->one(FLERR, "pair_style tpainn at step {}: {} (LAMMPS atom IDs)", update->ntimestep,
               err.describe([tag](int64_t row) { return std::to_string(tag[row]); }));
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

// The graph's nodes are all local and ghost atoms, in LAMMPS' order (so the exchanges below work on LAMMPS
// indices directly), and its edges start at local atoms. Every rank calls the engine, also one without local
// atoms: the feature exchanges between layers are collective.
void PairTPaiNN::compute_decomposed()
{
  const int nlocal = atom->nlocal, nall = nlocal + atom->nghost;
  double **x = atom->x;
  const double cutsq_model = engine->cutoff() * engine->cutoff();
  positions.resize(3 * nall);
  numbers.resize(nall);
  for (int i = 0; i < nall; i++) {
    std::copy_n(x[i], 3, &positions[3 * i]);
    numbers[i] = type_number[atom->type[i]];
  }
  edge_i.clear();
  edge_j.clear();
  const int *ilist = list->ilist, *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;
  for (int ii = 0; ii < list->inum; ii++) {
    const int i = ilist[ii];
    for (int jj = 0; jj < numneigh[i]; jj++) {
      const int j = firstneigh[i][jj] & NEIGHMASK;
      const double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
      if (dx * dx + dy * dy + dz * dz >= cutsq_model) continue;
      edge_i.push_back(i);
      edge_j.push_back(j);
    }
  }
  const double no_cell[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};  // ghosts carry their image positions: no shifts
  const tpainn::Atoms atoms{positions.data(), numbers.data(), nall, no_cell};
  RankExchange exchange(this);
  const tpainn::Result r =
      engine->compute_decomposed(atoms, nlocal, edge_i.data(), edge_j.data(), int64_t(edge_i.size()), exchange);
  double **f = atom->f;
  for (int i = 0; i < nall; i++)
    for (int d = 0; d < 3; d++) f[i][d] += energy_unit * r.forces[3 * i + d];
  for (int i = 0; i < nlocal; i++) {
    if (eflag_global) eng_vdwl += energy_unit * r.energies[i];
    if (eflag_atom) eatom[i] += energy_unit * r.energies[i];
  }
}

// The engine's rows are LAMMPS' atoms: forward communication fills the ghosts' rows from their owners,
// reverse communication adds the ghosts' rows to their owners'. The pack/unpack methods read and write
// comm_rows, which points at the engine's rows during the call. LAMMPS' buffers are doubles: rows of floats
// travel as bytes, two floats per double (the width, 6F, is even).
template <typename T> void PairTPaiNN::exchange(T *rows, int64_t width, bool forward)
{
  comm_rows = rows;
  comm_width = static_cast<int>(width);
  comm_float = sizeof(T) == sizeof(float);
  const int doubles = static_cast<int>(width * sizeof(T) / sizeof(double));
  if (forward) comm->forward_comm(this, doubles);
  else comm->reverse_comm(this, doubles);
}

template <typename T> int PairTPaiNN::pack_rows(int n, const int *list, int first, double *buf) const
{
  const T *rows = static_cast<const T *>(comm_rows);
  const size_t row_bytes = comm_width * sizeof(T);
  for (int i = 0; i < n; i++)
    std::memcpy(reinterpret_cast<char *>(buf) + i * row_bytes, rows + size_t(list ? list[i] : first + i) * comm_width,
                row_bytes);
  return static_cast<int>(n * row_bytes / sizeof(double));
}

template <typename T> void PairTPaiNN::add_rows(int n, const int *list, const double *buf)
{
  T *rows = static_cast<T *>(comm_rows);
  const char *bytes = reinterpret_cast<const char *>(buf);
  for (int i = 0; i < n; i++) {
    T *row = rows + size_t(list[i]) * comm_width;
    for (int c = 0; c < comm_width; c++, bytes += sizeof(T)) {
      T value;
      std::memcpy(&value, bytes, sizeof(T));
      row[c] += value;
    }
  }
}

int PairTPaiNN::pack_forward_comm(int n, int *list, double *buf, int /*pbc_flag*/, int * /*pbc*/)
{
  return comm_float ? pack_rows<float>(n, list, 0, buf) : pack_rows<double>(n, list, 0, buf);
}

void PairTPaiNN::unpack_forward_comm(int n, int first, double *buf)
{
  const size_t row_bytes = comm_width * (comm_float ? sizeof(float) : sizeof(double));
  std::memcpy(static_cast<char *>(comm_rows) + first * row_bytes, buf, n * row_bytes);
}

int PairTPaiNN::pack_reverse_comm(int n, int first, double *buf)
{
  return comm_float ? pack_rows<float>(n, nullptr, first, buf) : pack_rows<double>(n, nullptr, first, buf);
}

void PairTPaiNN::unpack_reverse_comm(int n, int *list, double *buf)
{
  if (comm_float) add_rows<float>(n, list, buf);
  else add_rows<double>(n, list, buf);
}
