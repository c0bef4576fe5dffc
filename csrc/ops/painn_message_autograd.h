// Autograd of tpainn::painn_message to any order: the operator's backward is tpainn::painn_message_backward, and
// the backward of that is again made of the two operators (painn_message_autograd.cpp says how), so a model that
// calls the operator trains with forces in its loss (the gradient of the force with respect to the weights).
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace tpainn::ops {

// The Autograd kernels of the two operators (register_ops.cpp registers them; schemas there).
std::tuple<at::Tensor, at::Tensor> painn_message_autograd(const at::Tensor& s, const at::Tensor& v,
                                                          const at::Tensor& x, const at::Tensor& radial,
                                                          const at::Tensor& weight, const at::Tensor& unit_vectors,
                                                          const at::Tensor& centres, const at::Tensor& neighbours);

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> painn_message_backward_autograd(
    const at::Tensor& grad_s_out, const at::Tensor& grad_v_out, const at::Tensor& v, const at::Tensor& x,
    const at::Tensor& radial, const at::Tensor& weight, const at::Tensor& unit_vectors, const at::Tensor& centres,
    const at::Tensor& neighbours, bool weight_gradient);

}  // namespace tpainn::ops
