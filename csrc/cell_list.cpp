#include "cell_list.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace tpainn {
namespace {

struct Vec3 {
  double x, y, z;
};
Vec3 cross(const double* u, const double* v) {
  return {u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]};
}
double dot(const Vec3& u, const double* v) { return u.x * v[0] + u.y * v[1] + u.z * v[2]; }
double norm(const Vec3& u) { return std::sqrt(u.x * u.x + u.y * u.y + u.z * u.z); }

// Atoms in reduced coordinates t: fractional coordinates along the lattice vectors when any direction is
// periodic, Cartesian ones otherwise (the cell is then ignored and may be all zeros).
struct Reduced {
  std::vector<double> t;               // [n * 3]
  std::vector<int64_t> wrap;           // [n * 3] lattice vectors subtracted to bring atom i into the cell
  std::array<double, 9> lattice{};     // stays zero without pbc: shifts are then always zero anyway
  std::array<double, 3> height{1.0, 1.0, 1.0};  // Å between the planes t_k = 0 and t_k = 1
};

Reduced reduce(const double* positions, int64_t n, const double* cell, const std::array<bool, 3>& pbc) {
  Reduced r;
  r.t.resize(3 * n);
  r.wrap.assign(3 * n, 0);
  if (!(pbc[0] || pbc[1] || pbc[2])) {
    std::copy(positions, positions + 3 * n, r.t.begin());
    return r;
  }
  std::copy(cell, cell + 9, r.lattice.begin());
  const double* a = r.lattice.data();
  // Reciprocal vectors: t_k = r . (a_l x a_m) / V.
  const Vec3 recip[3] = {cross(a + 3, a + 6), cross(a + 6, a), cross(a, a + 3)};
  const double volume = dot(recip[0], a);
  if (!(std::abs(volume) > 0.0) || !std::isfinite(volume))
    throw std::invalid_argument("cell must be full rank when any direction is periodic");
  for (int k = 0; k < 3; ++k) r.height[k] = std::abs(volume) / norm(recip[k]);
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 3; ++k) {
      double s = dot(recip[k], positions + 3 * i) / volume;
      if (pbc[k]) {
        const double w = std::floor(s);
        if (!(std::abs(w) <= 1e15))  // NaN, or so far out that int64 shifts and double accuracy are lost
          throw std::invalid_argument("position of atom " + std::to_string(i) +
                                      " is not finite or too far outside the cell");
        r.wrap[3 * i + k] = static_cast<int64_t>(w);
        s -= w;  // in [0, 1]; rounding may give exactly 1, which the bin clamp handles
      }
      r.t[3 * i + k] = s;
    }
  }
  return r;
}

// The bins: per direction, the occupied range [lo, lo + span) of t, the bin count, and the reach (how many
// bins away a neighbour within the cutoff can be).
struct Grid {
  std::array<double, 3> lo{}, span{1.0, 1.0, 1.0};
  std::array<int64_t, 3> nbin{}, reach{};
};

Grid grid(const Reduced& r, int64_t n, const std::array<bool, 3>& pbc, double cutoff) {
  // Bins per direction: as many as fit with a width >= cutoff over the occupied range ([0, 1) when periodic,
  // the atoms' extent otherwise), then capped so the bin count stays O(N) for sparse systems.
  Grid g;
  const int64_t max_bins = 4 * n + 64;
  for (int k = 0; k < 3; ++k) {
    if (!pbc[k]) {
      double hi = r.t[k];
      g.lo[k] = r.t[k];
      for (int64_t i = 1; i < n; ++i) {
        g.lo[k] = std::min(g.lo[k], r.t[3 * i + k]);
        hi = std::max(hi, r.t[3 * i + k]);
      }
      g.span[k] = hi - g.lo[k];
    }
    g.nbin[k] = static_cast<int64_t>(std::clamp(std::floor(r.height[k] * g.span[k] / cutoff), 1.0, double(max_bins)));
  }
  // Product in double: three capped counts can still overflow int64. Halving only widens bins.
  while (double(g.nbin[0]) * double(g.nbin[1]) * double(g.nbin[2]) > double(max_bins)) {
    int64_t& largest = *std::max_element(g.nbin.begin(), g.nbin.end());
    largest = (largest + 1) / 2;
  }
  for (int k = 0; k < 3; ++k) {
    // Atoms closer than cutoff differ by < cutoff / height in t_k, i.e. by at most `reach` bins. In periodic
    // directions reach may exceed the bin count (cell thinner than the cutoff): the search then wraps
    // around several times, visiting several images of each atom. Non-periodic directions have no images.
    const double extent = r.height[k] * g.span[k];
    g.reach[k] = extent > 0.0 ? static_cast<int64_t>(std::ceil(cutoff * double(g.nbin[k]) / extent)) : 0;
    if (!pbc[k]) g.reach[k] = std::min(g.reach[k], g.nbin[k] - 1);
  }
  return g;
}

double times_cell(const std::array<double, 9>& L, int64_t s0, int64_t s1, int64_t s2, int k) {
  return double(s0) * L[k] + double(s1) * L[3 + k] + double(s2) * L[6 + k];
}

// The atoms sorted by bin (counting sort; stable, so each bin lists its atoms in index order).
struct Bins {
  std::vector<int64_t> xyz;      // [n * 3] bin coordinates of atom i
  std::vector<int64_t> start;    // [n_bins + 1] bin b holds sorted[start[b] .. start[b + 1])
  std::vector<int64_t> sorted;   // [n] atom indices in bin order
  std::vector<double> wrapped;   // [n * 3] wrapped Cartesian positions r - wrap @ cell, in bin order
};

Bins sort_into_bins(const double* positions, int64_t n, const Reduced& r, const Grid& g) {
  const int64_t n_bins = g.nbin[0] * g.nbin[1] * g.nbin[2];
  Bins bins;
  bins.xyz.resize(3 * n);
  bins.start.assign(n_bins + 1, 0);
  bins.sorted.resize(n);
  std::vector<int64_t> bin_of(n);
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 3; ++k) {
      const double u = g.span[k] > 0.0 ? (r.t[3 * i + k] - g.lo[k]) / g.span[k] : 0.0;
      bins.xyz[3 * i + k] = std::clamp(static_cast<int64_t>(std::floor(u * double(g.nbin[k]))), int64_t{0}, g.nbin[k] - 1);
    }
    bin_of[i] = (bins.xyz[3 * i] * g.nbin[1] + bins.xyz[3 * i + 1]) * g.nbin[2] + bins.xyz[3 * i + 2];
    ++bins.start[bin_of[i] + 1];
  }
  for (int64_t b = 0; b < n_bins; ++b) bins.start[b + 1] += bins.start[b];
  std::vector<int64_t> fill(bins.start.begin(), bins.start.end() - 1);
  for (int64_t i = 0; i < n; ++i) bins.sorted[fill[bin_of[i]]++] = i;
  // In bin order, so that the search's hot loop reads them contiguously.
  bins.wrapped.resize(3 * n);
  for (int64_t p = 0; p < n; ++p) {
    const int64_t* w = &r.wrap[3 * bins.sorted[p]];
    for (int k = 0; k < 3; ++k)
      bins.wrapped[3 * p + k] = positions[3 * bins.sorted[p] + k] - times_cell(r.lattice, w[0], w[1], w[2], k);
  }
  return bins;
}

// Maps bin coordinate c (possibly outside [0, nbin)) of direction k to an in-range bin and the lattice
// image it belongs to; false for out-of-range bins of non-periodic directions.
bool resolve(bool periodic, int64_t nbin, int64_t c, int64_t& bin, int64_t& image) {
  if (periodic) {
    image = c >= 0 ? c / nbin : -((-c - 1) / nbin) - 1;  // floor division
    bin = c - image * nbin;
    return true;
  }
  image = 0;
  bin = c;
  return c >= 0 && c < nbin;
}

// Appends the edges of atom i to `out`. Candidates are screened cheaply with the wrapped positions. Survivors
// are recomputed exactly as callers will, r_j - r_i + shift @ cell from the original positions, and kept if
// d < cutoff. The screen's slack (5e-9 cutoff in distance) exceeds its extra rounding (~1e-16 of the
// coordinates' magnitude) as long as coordinates stay within ~10^7 cutoffs of the origin.
void edges_of(int64_t i, const double* positions, const std::array<bool, 3>& pbc, double cutoff, const Reduced& r,
              const Grid& g, const Bins& bins, std::vector<Edge>& out) {
  const double screen2 = cutoff * cutoff * (1.0 + 1e-8);
  const double* ri = positions + 3 * i;
  const int64_t* wi = &r.wrap[3 * i];
  for (int64_t dx = -g.reach[0]; dx <= g.reach[0]; ++dx) {
    int64_t bx, ix;
    if (!resolve(pbc[0], g.nbin[0], bins.xyz[3 * i] + dx, bx, ix)) continue;
    for (int64_t dy = -g.reach[1]; dy <= g.reach[1]; ++dy) {
      int64_t by, iy;
      if (!resolve(pbc[1], g.nbin[1], bins.xyz[3 * i + 1] + dy, by, iy)) continue;
      for (int64_t dz = -g.reach[2]; dz <= g.reach[2]; ++dz) {
        int64_t bz, iz;
        if (!resolve(pbc[2], g.nbin[2], bins.xyz[3 * i + 2] + dz, bz, iz)) continue;
        // Wrapped i is r_i - wrap_i @ cell, so image (ix, iy, iz) of wrapped j seen from it is
        // wrapped_j + o @ cell - r_i with o = image + wrap_i; in original positions the shift is o - wrap_j.
        const int64_t o0 = ix + wi[0], o1 = iy + wi[1], o2 = iz + wi[2];
        const double base[3] = {times_cell(r.lattice, o0, o1, o2, 0) - ri[0],
                                times_cell(r.lattice, o0, o1, o2, 1) - ri[1],
                                times_cell(r.lattice, o0, o1, o2, 2) - ri[2]};
        const int64_t b = (bx * g.nbin[1] + by) * g.nbin[2] + bz;
        for (int64_t p = bins.start[b]; p < bins.start[b + 1]; ++p) {
          const double* q = &bins.wrapped[3 * p];
          const double ux = q[0] + base[0], uy = q[1] + base[1], uz = q[2] + base[2];
          if (ux * ux + uy * uy + uz * uz >= screen2) continue;
          const int64_t j = bins.sorted[p];
          const int64_t* wj = &r.wrap[3 * j];
          const int64_t s0 = o0 - wj[0], s1 = o1 - wj[1], s2 = o2 - wj[2];
          if (j == i && s0 == 0 && s1 == 0 && s2 == 0) continue;
          const double* rj = positions + 3 * j;
          const double vx = rj[0] - ri[0] + times_cell(r.lattice, s0, s1, s2, 0);
          const double vy = rj[1] - ri[1] + times_cell(r.lattice, s0, s1, s2, 1);
          const double vz = rj[2] - ri[2] + times_cell(r.lattice, s0, s1, s2, 2);
          const double d = std::sqrt(vx * vx + vy * vy + vz * vz);
          if (d >= cutoff) continue;
          out.push_back({i, j, {s0, s1, s2}, d});
        }
      }
    }
  }
}

}  // namespace

std::vector<Edge> cell_list(const double* positions, int64_t n_atoms, const double* cell,
                            const std::array<bool, 3>& pbc, double cutoff) {
  if (!(cutoff > 0.0) || !std::isfinite(cutoff)) throw std::invalid_argument("cutoff must be positive and finite");
  if (n_atoms < 0) throw std::invalid_argument("n_atoms must be >= 0");
  std::vector<Edge> out;
  if (n_atoms == 0) return out;
  const Reduced reduced = reduce(positions, n_atoms, cell, pbc);
  const Grid bins_grid = grid(reduced, n_atoms, pbc, cutoff);
  const Bins bins = sort_into_bins(positions, n_atoms, reduced, bins_grid);
  // Growing a vector of millions of edges by doubling (fresh pages, copies) costs as much as the search:
  // reserve once, extrapolating from the first `sample` atoms; unused capacity is never touched.
  const int64_t sample = std::min(n_atoms, 32 + n_atoms / 32);
  for (int64_t i = 0; i < n_atoms; ++i) {
    if (i == sample) out.reserve(out.size() * size_t(n_atoms) / size_t(sample) * 5 / 4);
    edges_of(i, positions, pbc, cutoff, reduced, bins_grid, bins, out);
  }
  return out;
}

}  // namespace tpainn
