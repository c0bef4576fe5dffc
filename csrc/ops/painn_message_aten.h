// The message operator in plain ATen (any device; painn_message.h for the formulas). Registered for the
// backends without a fused kernel, and exposed to Python (tpainn._C) so the CPU tests can check it.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace tpainn::ops {

std::tuple<at::Tensor, at::Tensor> painn_message_aten(const at::Tensor& s, const at::Tensor& v, const at::Tensor& x,
                                                      const at::Tensor& radial, const at::Tensor& weight,
                                                      const at::Tensor& unit_vectors, const at::Tensor& centres,
                                                      const at::Tensor& neighbours);

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> painn_message_backward_aten(
    const at::Tensor& grad_s_out, const at::Tensor& grad_v_out, const at::Tensor& v, const at::Tensor& x,
    const at::Tensor& radial, const at::Tensor& weight, const at::Tensor& unit_vectors, const at::Tensor& centres,
    const at::Tensor& neighbours, bool weight_gradient);

}  // namespace tpainn::ops
