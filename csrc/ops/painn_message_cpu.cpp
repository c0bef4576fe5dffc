// CPU kernels of the fused PaiNN message block (painn_message.h).
//
// Why fused: the eager block materialises per-edge tensors of width 3F (filters, gathered x_j and v_j, their
// products) and reads them back in the backward pass: per edge ~10 KB of memory traffic for ~15 kFLOP, so it
// runs at a few % of the arithmetic peak. Here a block of edges' filters is computed into a buffer that stays
// in L1 and is used at once; the backward pass recomputes it rather than storing [E, 3F].
//
// Parallel without atomics: the forward pass gives each thread a range of receiving atoms i (edges grouped by
// centre), the backward pass a range of sending atoms j (edges grouped by neighbour), so all accumulation goes
// to atoms the thread owns and per-edge gradients are written once. The weight gradient (training, gradcheck)
// is summed per fixed chunk of atoms, and the chunks in order: the same numbers at any thread count.
// The threads are torch's: this file is compiled with OpenMP (CMakeLists.txt), without which at::parallel_for
// (a header template over `omp parallel`) would run every range on the calling thread.
//
// The kernels are always-inline templates instantiated twice: for the baseline ISA and for AVX2 + FMA,
// chosen at run time: a build may run on other CPUs than the one it was compiled on.

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "edge_csr.h"
#include "painn_message.h"

#define TPAINN_INLINE inline __attribute__((always_inline))

namespace tpainn::ops {
namespace {

// Edges whose filters are computed together: each weight value loaded feeds this many FMAs.
constexpr int kEdgeBlock = 4;
// Columns of block_product's register tile: three 256-bit vectors.
template <typename T>
constexpr int kProductTile = 96 / sizeof(T);
// Atoms per parallel task, at least (a task must amortise its scratch buffers); the backward pass's chunks.
constexpr int64_t kAtomsPerChunk = 16;

template <typename T>
struct EdgeBlock {
  int n;                             // real edges; the others are padding with zero radial features
  int64_t edge[kEdgeBlock];          // edge ids
  const T* radial[kEdgeBlock];       // their radial feature rows
  T* filters;                        // [kEdgeBlock, 3F] scratch
};

// The edges csr.order[p], ... (at most kEdgeBlock, up to `end`), padded with a zero radial row.
template <typename T>
TPAINN_INLINE void gather_block(const MessageInputs<T>& in, const EdgeCsr& csr, int64_t p, int64_t end,
                                const T* zero_row, EdgeBlock<T>& block) {
  block.n = int(std::min<int64_t>(kEdgeBlock, end - p));
  for (int b = 0; b < kEdgeBlock; ++b) {
    block.edge[b] = b < block.n ? csr.order[p + b] : -1;
    block.radial[b] = b < block.n ? in.radial + block.edge[b] * in.n_radial : zero_row;
  }
}

// out[b][n] = sum_r rows[b][r] matrix[r][n] for the kEdgeBlock rows of a block; matrix [R, cols] row-major.
// Filters: rows = radial features, matrix = weight. Radial gradients: rows = dL/dfilter, matrix = weight^T.
template <typename T>
TPAINN_INLINE void block_product(const T* const* rows, const T* matrix, int64_t R, int64_t cols, T* out) {
  // Three 256-bit vectors of columns per row: 12 accumulators stay in registers, and each step of r loads
  // 3 vectors and 4 scalars for 12 FMAs.
  constexpr int kTile = kProductTile<T>;
  int64_t n0 = 0;
  for (; n0 + kTile <= cols; n0 += kTile) {
    T acc[kEdgeBlock][kTile] = {};
    for (int64_t r = 0; r < R; ++r) {
      const T* m = matrix + r * cols + n0;
      for (int b = 0; b < kEdgeBlock; ++b) {
        const T x = rows[b][r];
#pragma omp simd
        for (int n = 0; n < kTile; ++n) acc[b][n] += x * m[n];
      }
    }
    for (int b = 0; b < kEdgeBlock; ++b) std::copy_n(acc[b], kTile, out + b * cols + n0);
  }
  for (int b = 0; b < kEdgeBlock; ++b)
    for (int64_t n = n0; n < cols; ++n) {
      T sum = 0;
      for (int64_t r = 0; r < R; ++r) sum += rows[b][r] * matrix[r * cols + n];
      out[b * cols + n] = sum;
    }
}

// One edge's message into its receiver: s_i += x_s f_s; v_i[a] += v_j[a] (x_vv f_vv) + (x_vs f_vs) u[a].
template <typename T>
TPAINN_INLINE void add_message(int64_t F, const T* __restrict x_j, const T* __restrict v_j, const T* __restrict f,
                               const T* u, T* __restrict s_i, T* __restrict v_i) {
  const T u0 = u[0], u1 = u[1], u2 = u[2];
#pragma omp simd
  for (int64_t c = 0; c < F; ++c) {
    const T y_vv = x_j[F + c] * f[F + c], y_vs = x_j[2 * F + c] * f[2 * F + c];
    s_i[c] += x_j[c] * f[c];
    v_i[c] += v_j[c] * y_vv + y_vs * u0;
    v_i[F + c] += v_j[F + c] * y_vv + y_vs * u1;
    v_i[2 * F + c] += v_j[2 * F + c] * y_vv + y_vs * u2;
  }
}

template <typename T>
TPAINN_INLINE void forward_atoms(const MessageInputs<T>& in, const EdgeCsr& by_centre, T* s_out, T* v_out,
                                 int64_t begin, int64_t end) {
  const int64_t F = in.n_features, C = 3 * F, K = in.n_radial;
  std::vector<T> filters(kEdgeBlock * C), zero_row(K, T(0));
  EdgeBlock<T> block;
  block.filters = filters.data();
  for (int64_t i = begin; i < end; ++i) {
    T* s_i = std::copy_n(in.s + i * F, F, s_out + i * F) - F;
    T* v_i = std::copy_n(in.v + i * 3 * F, 3 * F, v_out + i * 3 * F) - 3 * F;
    for (int64_t p = by_centre.ptr[i]; p < by_centre.ptr[i + 1]; p += kEdgeBlock) {
      gather_block(in, by_centre, p, by_centre.ptr[i + 1], zero_row.data(), block);
      block_product(block.radial, in.weight, K, C, block.filters);
      for (int b = 0; b < block.n; ++b) {
        const int64_t e = block.edge[b], j = in.neighbours[e];
        add_message(F, in.x + j * C, in.v + j * 3 * F, block.filters + b * C, in.unit_vectors + 3 * e, s_i, v_i);
      }
    }
  }
}

// One edge's gradients, given its filter f and its receiver's gs_i = dL/ds_out_i, gv_i = dL/dv_out_i:
// accumulates dL/dx_j and dL/dv_j into the sender's gx_j, gv_j; writes dL/dfilter to grad_filter and
// dL/du to grad_u.
template <typename T>
TPAINN_INLINE void edge_backward(int64_t F, const T* __restrict x_j, const T* __restrict v_j, const T* __restrict f,
                                 const T* u, const T* __restrict gs_i, const T* __restrict gv_i, T* __restrict gx_j,
                                 T* __restrict gv_j, T* __restrict grad_filter, T* grad_u) {
  const T u0 = u[0], u1 = u[1], u2 = u[2];
  T gu0 = 0, gu1 = 0, gu2 = 0;
#pragma omp simd reduction(+ : gu0, gu1, gu2)
  for (int64_t c = 0; c < F; ++c) {
    const T g0 = gv_i[c], g1 = gv_i[F + c], g2 = gv_i[2 * F + c];
    const T g_vv = g0 * v_j[c] + g1 * v_j[F + c] + g2 * v_j[2 * F + c];  // dL/dy_vv
    const T g_vs = g0 * u0 + g1 * u1 + g2 * u2;                           // dL/dy_vs
    const T y_vv = x_j[F + c] * f[F + c], y_vs = x_j[2 * F + c] * f[2 * F + c];
    grad_filter[c] = gs_i[c] * x_j[c];
    grad_filter[F + c] = g_vv * x_j[F + c];
    grad_filter[2 * F + c] = g_vs * x_j[2 * F + c];
    gx_j[c] += gs_i[c] * f[c];
    gx_j[F + c] += g_vv * f[F + c];
    gx_j[2 * F + c] += g_vs * f[2 * F + c];
    gv_j[c] += g0 * y_vv;
    gv_j[F + c] += g1 * y_vv;
    gv_j[2 * F + c] += g2 * y_vv;
    gu0 += g0 * y_vs;
    gu1 += g1 * y_vs;
    gu2 += g2 * y_vs;
  }
  grad_u[0] = gu0;
  grad_u[1] = gu1;
  grad_u[2] = gu2;
}

// grad_weight[k][c] += sum_b radial[b][k] grad_filters[b][c].
template <typename T>
TPAINN_INLINE void add_weight_gradient(int64_t K, int64_t C, const T* grad_filters, const EdgeBlock<T>& block,
                                       T* grad_weight) {
  const T *g0 = grad_filters, *g1 = g0 + C, *g2 = g1 + C, *g3 = g2 + C;
  for (int64_t k = 0; k < K; ++k) {
    const T r0 = block.radial[0][k], r1 = block.radial[1][k], r2 = block.radial[2][k], r3 = block.radial[3][k];
    T* gw = grad_weight + k * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) gw[c] += r0 * g0[c] + r1 * g1[c] + r2 * g2[c] + r3 * g3[c];
  }
}

template <typename T>
TPAINN_INLINE void backward_atoms(const MessageInputs<T>& in, const EdgeCsr& by_neighbour, const T* grad_s_out,
                                  const T* grad_v_out, const MessageGradients<T>& out, T* grad_weight,
                                  int64_t begin, int64_t end) {
  const int64_t F = in.n_features, C = 3 * F, K = in.n_radial;
  // dL/dradial = dL/dfilter @ weight^T, with weight^T padded to whole register tiles.
  const int64_t padded_k = (K + kProductTile<T> - 1) / kProductTile<T> * kProductTile<T>;
  std::vector<T> filters(kEdgeBlock * C), grad_filters(kEdgeBlock * C, T(0)), zero_row(K, T(0)),
      transposed(C * padded_k, T(0)), grad_radial(kEdgeBlock * padded_k);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c) transposed[c * padded_k + k] = in.weight[k * C + c];
  const T* weight_t = transposed.data();
  const T* grad_filter_rows[kEdgeBlock];
  for (int b = 0; b < kEdgeBlock; ++b) grad_filter_rows[b] = grad_filters.data() + b * C;
  EdgeBlock<T> block;
  block.filters = filters.data();
  for (int64_t j = begin; j < end; ++j) {
    const T* x_j = in.x + j * C;
    const T* v_j = in.v + j * 3 * F;
    T* gx_j = std::fill_n(out.x + j * C, C, T(0)) - C;
    T* gv_j = std::copy_n(grad_v_out + j * 3 * F, 3 * F, out.v + j * 3 * F) - 3 * F;  // v_out = v + ...
    for (int64_t p = by_neighbour.ptr[j]; p < by_neighbour.ptr[j + 1]; p += kEdgeBlock) {
      gather_block(in, by_neighbour, p, by_neighbour.ptr[j + 1], zero_row.data(), block);
      block_product(block.radial, in.weight, K, C, block.filters);
      for (int b = 0; b < block.n; ++b) {
        const int64_t e = block.edge[b], i = in.centres[e];
        edge_backward(F, x_j, v_j, block.filters + b * C, in.unit_vectors + 3 * e, grad_s_out + i * F,
                      grad_v_out + i * 3 * F, gx_j, gv_j, grad_filters.data() + b * C, out.unit_vectors + 3 * e);
      }
      std::fill(grad_filters.begin() + block.n * C, grad_filters.end(), T(0));  // padding edges
      block_product(grad_filter_rows, weight_t, C, padded_k, grad_radial.data());
      for (int b = 0; b < block.n; ++b)
        std::copy_n(grad_radial.data() + b * padded_k, K, out.radial + block.edge[b] * K);
      if (grad_weight) add_weight_gradient(K, C, grad_filters.data(), block, grad_weight);
    }
  }
}

// The same kernels for the baseline ISA and for AVX2 + FMA (always-inline bodies, compiled in each).
template <typename T>
void forward_baseline(const MessageInputs<T>& in, const EdgeCsr& csr, T* s_out, T* v_out, int64_t begin, int64_t end) {
  forward_atoms(in, csr, s_out, v_out, begin, end);
}
template <typename T>
void backward_baseline(const MessageInputs<T>& in, const EdgeCsr& csr, const T* gs, const T* gv,
                       const MessageGradients<T>& out, T* grad_weight, int64_t begin, int64_t end) {
  backward_atoms(in, csr, gs, gv, out, grad_weight, begin, end);
}

#if defined(__x86_64__)
template <typename T>
__attribute__((target("avx2,fma"))) void forward_avx2(const MessageInputs<T>& in, const EdgeCsr& csr, T* s_out,
                                                      T* v_out, int64_t begin, int64_t end) {
  forward_atoms(in, csr, s_out, v_out, begin, end);
}
template <typename T>
__attribute__((target("avx2,fma"))) void backward_avx2(const MessageInputs<T>& in, const EdgeCsr& csr, const T* gs,
                                                       const T* gv, const MessageGradients<T>& out, T* grad_weight,
                                                       int64_t begin, int64_t end) {
  backward_atoms(in, csr, gs, gv, out, grad_weight, begin, end);
}

bool cpu_has_avx2_fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#endif

}  // namespace

template <typename T>
void painn_message_forward(const MessageInputs<T>& in, T* s_out, T* v_out) {
  check_atom_indices(in.neighbours, in.n_edges, in.n_atoms);
  const EdgeCsr by_centre = edge_csr(in.centres, in.n_edges, in.n_atoms);
  at::parallel_for(0, in.n_atoms, kAtomsPerChunk, [&](int64_t begin, int64_t end) {
#if defined(__x86_64__)
    if (cpu_has_avx2_fma()) return forward_avx2(in, by_centre, s_out, v_out, begin, end);
#endif
    forward_baseline(in, by_centre, s_out, v_out, begin, end);
  });
}

template <typename T>
void painn_message_backward(const MessageInputs<T>& in, const T* grad_s_out, const T* grad_v_out,
                            const MessageGradients<T>& out) {
  check_atom_indices(in.centres, in.n_edges, in.n_atoms);
  const EdgeCsr by_neighbour = edge_csr(in.neighbours, in.n_edges, in.n_atoms);
  const int64_t weight_size = out.weight ? in.n_radial * 3 * in.n_features : 0;
  const int64_t n_chunks = (in.n_atoms + kAtomsPerChunk - 1) / kAtomsPerChunk;
  std::vector<T> chunk_weights(n_chunks * weight_size, T(0));
  at::parallel_for(0, n_chunks, 1, [&](int64_t first, int64_t last) {
    for (int64_t chunk = first; chunk < last; ++chunk) {
      const int64_t begin = chunk * kAtomsPerChunk, end = std::min(in.n_atoms, begin + kAtomsPerChunk);
      T* gw = out.weight ? chunk_weights.data() + chunk * weight_size : nullptr;
#if defined(__x86_64__)
      if (cpu_has_avx2_fma()) {
        backward_avx2(in, by_neighbour, grad_s_out, grad_v_out, out, gw, begin, end);
        continue;
      }
#endif
      backward_baseline(in, by_neighbour, grad_s_out, grad_v_out, out, gw, begin, end);
    }
  });
  if (!out.weight) return;
  std::fill_n(out.weight, weight_size, T(0));
  for (int64_t chunk = 0; chunk < n_chunks; ++chunk)
    for (int64_t k = 0; k < weight_size; ++k) out.weight[k] += chunk_weights[chunk * weight_size + k];
}

int64_t parallel_threads_used(int64_t n_tasks) {
  std::vector<int> used(at::get_num_threads(), 0);
  at::parallel_for(0, n_tasks, 1, [&](int64_t, int64_t) { used[at::get_thread_num()] = 1; });
  return std::count(used.begin(), used.end(), 1);
}

template void painn_message_forward(const MessageInputs<float>&, float*, float*);
template void painn_message_forward(const MessageInputs<double>&, double*, double*);
template void painn_message_backward(const MessageInputs<float>&, const float*, const float*,
                                     const MessageGradients<float>&);
template void painn_message_backward(const MessageInputs<double>&, const double*, const double*,
                                     const MessageGradients<double>&);

}  // namespace tpainn::ops
