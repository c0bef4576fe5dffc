// The message operator in plain ATen (any device; painn_message.h for the formulas). Registered for the
// backends without a fused kernel (the operator's signature: automatic chunks), and exposed to Python (tpainn._C)
// with the chunk size as an argument so the CPU tests can check it. edges_per_chunk: edges per chunk of the
// per-edge temporaries (0: automatic, about 2^26 elements per [chunk, 3F]).
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

std::tuple<at::Tensor, at::Tensor> painn_message_aten_in_chunks(
    const at::Tensor& s, const at::Tensor& v, const at::Tensor& x, const at::Tensor& radial, const at::Tensor& weight,
    const at::Tensor& unit_vectors, const at::Tensor& centres, const at::Tensor& neighbours, int64_t edges_per_chunk);

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> painn_message_backward_aten_in_chunks(
    const at::Tensor& grad_s_out, const at::Tensor& grad_v_out, const at::Tensor& v, const at::Tensor& x,
    const at::Tensor& radial, const at::Tensor& weight, const at::Tensor& unit_vectors, const at::Tensor& centres,
    const at::Tensor& neighbours, bool weight_gradient, int64_t edges_per_chunk);

}  // namespace tpainn::ops
