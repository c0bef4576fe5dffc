// tpainn::painn_message in plain ATen operations: the kernel for every backend without a fused one (CUDA,
// ...), so that a fused export runs there too. Same formulas as painn_message.h. It forms the per-edge filters
// [E, 3F] that the CPU kernel never stores, but a chunk of edges at a time: the temporaries stay near
// kChunkElements elements whatever the graph's size, so a box's memory grows with its atoms and edge inputs only
// (the eager blocks' whole-graph temporaries, ~1.6 MB per water atom at F = 128, capped a GPU box at ~75k atoms).
#include "painn_message_aten.h"

#include <algorithm>

namespace tpainn::ops {

using at::Tensor;

namespace {

constexpr int64_t kChunkElements = int64_t(1) << 26;  // 256 MB per [chunk, 3F] temporary in float32

int64_t chunk_size(int64_t edges_per_chunk, int64_t f) {
  return edges_per_chunk > 0 ? edges_per_chunk : std::max<int64_t>(1, kChunkElements / (3 * f));
}

}  // namespace

std::tuple<Tensor, Tensor> painn_message_aten_in_chunks(const Tensor& s, const Tensor& v, const Tensor& x,
                                              const Tensor& radial, const Tensor& weight,
                                              const Tensor& unit_vectors, const Tensor& centres,
                                              const Tensor& neighbours, int64_t edges_per_chunk) {
  const int64_t f = s.size(1), n_edges = centres.size(0), chunk = chunk_size(edges_per_chunk, f);
  Tensor s_out = s.clone(), v_out = v.clone();
  for (int64_t start = 0; start < n_edges; start += chunk) {
    const int64_t n = std::min(chunk, n_edges - start);
    const Tensor i = centres.narrow(0, start, n), j = neighbours.narrow(0, start, n);
    const Tensor y = x.index_select(0, j) * at::matmul(radial.narrow(0, start, n), weight);  // [n, 3F]
    const auto parts = y.split(f, 1);                                                        // y_s, y_vv, y_vs
    s_out.index_add_(0, i, parts[0]);
    v_out.index_add_(0, i, v.index_select(0, j) * parts[1].unsqueeze(1) +
                               parts[2].unsqueeze(1) * unit_vectors.narrow(0, start, n).unsqueeze(2));  // [n, 3, F]
  }
  return {s_out, v_out};
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> painn_message_backward_aten_in_chunks(
    const Tensor& grad_s_out, const Tensor& grad_v_out, const Tensor& v, const Tensor& x, const Tensor& radial,
    const Tensor& weight, const Tensor& unit_vectors, const Tensor& centres, const Tensor& neighbours,
    bool weight_gradient, int64_t edges_per_chunk) {
  const int64_t f = v.size(2), n_edges = centres.size(0), chunk = chunk_size(edges_per_chunk, f);
  Tensor grad_v = grad_v_out.clone(), grad_x = at::zeros_like(x);  // v_out = v + Σ v_j * y_vv
  Tensor grad_radial = at::empty_like(radial), grad_unit = at::empty_like(unit_vectors);
  Tensor grad_weight = weight_gradient ? at::zeros_like(weight) : Tensor();
  for (int64_t start = 0; start < n_edges; start += chunk) {
    const int64_t n = std::min(chunk, n_edges - start);
    const Tensor i = centres.narrow(0, start, n), j = neighbours.narrow(0, start, n);
    const Tensor r = radial.narrow(0, start, n), unit = unit_vectors.narrow(0, start, n);
    const Tensor filters = at::matmul(r, weight), x_j = x.index_select(0, j);
    const auto parts = (x_j * filters).split(f, 1);
    const Tensor gv_i = grad_v_out.index_select(0, i), v_j = v.index_select(0, j);  // [n, 3, F]
    // dL/dy for y = x_j * W: the three parts' output gradients gathered at the receiving atom.
    const Tensor grad_y = at::cat({grad_s_out.index_select(0, i), (gv_i * v_j).sum(1), (gv_i * unit.unsqueeze(2)).sum(1)}, 1);
    const Tensor grad_filters = grad_y * x_j;
    grad_v.index_add_(0, j, gv_i * parts[1].unsqueeze(1));
    grad_x.index_add_(0, j, grad_y * filters);
    grad_radial.narrow(0, start, n).copy_(at::matmul(grad_filters, weight.t()));
    grad_unit.narrow(0, start, n).copy_((gv_i * parts[2].unsqueeze(1)).sum(2));
    if (weight_gradient) grad_weight.add_(at::matmul(r.t(), grad_filters));
  }
  return {grad_v, grad_x, grad_radial, grad_unit, grad_weight};
}

std::tuple<Tensor, Tensor> painn_message_aten(const Tensor& s, const Tensor& v, const Tensor& x, const Tensor& radial,
                                              const Tensor& weight, const Tensor& unit_vectors, const Tensor& centres,
                                              const Tensor& neighbours) {
  return painn_message_aten_in_chunks(s, v, x, radial, weight, unit_vectors, centres, neighbours, 0);
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> painn_message_backward_aten(
    const Tensor& grad_s_out, const Tensor& grad_v_out, const Tensor& v, const Tensor& x, const Tensor& radial,
    const Tensor& weight, const Tensor& unit_vectors, const Tensor& centres, const Tensor& neighbours,
    bool weight_gradient) {
  return painn_message_backward_aten_in_chunks(grad_s_out, grad_v_out, v, x, radial, weight, unit_vectors, centres,
                                               neighbours, weight_gradient, 0);
}

}  // namespace tpainn::ops
