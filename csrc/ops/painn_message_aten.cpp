// tpainn::painn_message in plain ATen operations: the kernel for every backend without a fused one (CUDA,
// ...), so that a fused export runs there too. It materialises the per-edge filters [E, 3F] that the CPU
// kernel avoids, i.e. it costs what the unfused model costs. Same formulas as painn_message.h.
#include "painn_message_aten.h"

namespace tpainn::ops {

using at::Tensor;

std::tuple<Tensor, Tensor> painn_message_aten(const Tensor& s, const Tensor& v, const Tensor& x,
                                              const Tensor& radial, const Tensor& weight,
                                              const Tensor& unit_vectors, const Tensor& centres,
                                              const Tensor& neighbours) {
  const int64_t f = s.size(1);
  const Tensor y = x.index_select(0, neighbours) * at::matmul(radial, weight);  // [E, 3F]
  const auto parts = y.split(f, 1);                                              // y_s, y_vv, y_vs
  const Tensor message_v = v.index_select(0, neighbours) * parts[1].unsqueeze(1) +
                           parts[2].unsqueeze(1) * unit_vectors.unsqueeze(2);  // [E, 3, F]
  return {s.index_add(0, centres, parts[0]), v.index_add(0, centres, message_v)};
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> painn_message_backward_aten(
    const Tensor& grad_s_out, const Tensor& grad_v_out, const Tensor& v, const Tensor& x, const Tensor& radial,
    const Tensor& weight, const Tensor& unit_vectors, const Tensor& centres, const Tensor& neighbours,
    bool weight_gradient) {
  const int64_t f = v.size(2);
  const Tensor filters = at::matmul(radial, weight), x_j = x.index_select(0, neighbours);
  const auto parts = (x_j * filters).split(f, 1);
  const Tensor gv_i = grad_v_out.index_select(0, centres), v_j = v.index_select(0, neighbours);  // [E, 3, F]
  // dL/dy for y = x_j * W: the three parts' output gradients gathered at the receiving atom.
  const Tensor grad_y = at::cat({grad_s_out.index_select(0, centres), (gv_i * v_j).sum(1),
                                 (gv_i * unit_vectors.unsqueeze(2)).sum(1)},
                                1);
  const Tensor grad_filters = grad_y * x_j;
  return {grad_v_out.index_add(0, neighbours, gv_i * parts[1].unsqueeze(1)),  // v_out = v + v_j * y_vv
          at::zeros_like(x).index_add_(0, neighbours, grad_y * filters),
          at::matmul(grad_filters, weight.t()),
          (gv_i * parts[2].unsqueeze(1)).sum(2),
          weight_gradient ? at::matmul(radial.t(), grad_filters) : Tensor()};
}

}  // namespace tpainn::ops
