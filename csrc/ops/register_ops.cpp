// tpainn's operators: tpainn::ghost_exchange (ghost_exchange_op.h), and tpainn::painn_message, the fused message
// block (painn_message.h) as a torch operator with a CPU kernel. Its backward is an operator too, and both have
// autograd kernels (painn_message_autograd.h) to any order: the C++ engine differentiates a fused TorchScript
// model for forces and virial, and training differentiates the forces again. Backends other than the CPU (CUDA)
// run both operators as ATen operations (painn_message_aten.h).
#include "register_ops.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include <memory>
#include <mutex>

#include "ghost_exchange_op.h"
#include "painn_message.h"
#include "painn_message_aten.h"
#include "painn_message_autograd.h"

namespace tpainn::ops {
namespace {

using at::Tensor;

const char* const kForwardSchema =
    "painn_message(Tensor s, Tensor v, Tensor x, Tensor radial, Tensor weight, Tensor unit_vectors, "
    "Tensor centres, Tensor neighbours) -> (Tensor s_out, Tensor v_out)";
const char* const kBackwardSchema =
    "painn_message_backward(Tensor grad_s_out, Tensor grad_v_out, Tensor v, Tensor x, Tensor radial, "
    "Tensor weight, Tensor unit_vectors, Tensor centres, Tensor neighbours, bool weight_gradient) "
    "-> (Tensor grad_v, Tensor grad_x, Tensor grad_radial, Tensor grad_unit_vectors, Tensor grad_weight)";

void check_shapes(const Tensor& s, const Tensor& v, const Tensor& x, const Tensor& radial, const Tensor& weight,
                  const Tensor& unit_vectors, const Tensor& centres, const Tensor& neighbours) {
  TORCH_CHECK(s.dim() == 2, "painn_message: s must be [N, F]");
  const int64_t n = s.size(0), f = s.size(1), n_edges = centres.size(0), k = radial.size(-1);
  TORCH_CHECK(v.sizes() == at::IntArrayRef({n, 3, f}), "painn_message: v must be [N, 3, F]");
  TORCH_CHECK(x.sizes() == at::IntArrayRef({n, 3 * f}), "painn_message: x must be [N, 3F]");
  TORCH_CHECK(radial.sizes() == at::IntArrayRef({n_edges, k}), "painn_message: radial must be [E, K]");
  TORCH_CHECK(weight.sizes() == at::IntArrayRef({k, 3 * f}), "painn_message: weight must be [K, 3F]");
  TORCH_CHECK(unit_vectors.sizes() == at::IntArrayRef({n_edges, 3}), "painn_message: unit_vectors must be [E, 3]");
  TORCH_CHECK(centres.dim() == 1 && neighbours.sizes() == centres.sizes(),
              "painn_message: centres and neighbours must be [E]");
  TORCH_CHECK(centres.scalar_type() == at::kLong && neighbours.scalar_type() == at::kLong,
              "painn_message: centres and neighbours must be int64");
  for (const Tensor* t : {&v, &x, &radial, &weight, &unit_vectors})
    TORCH_CHECK(t->scalar_type() == s.scalar_type(), "painn_message: all feature tensors must have one dtype");
  TORCH_CHECK(s.scalar_type() == at::kFloat || s.scalar_type() == at::kDouble,
              "painn_message: float32 or float64 only, got ", s.scalar_type());
}

// Raw pointers for the kernels (their arguments made contiguous first); `s` is set by the forward only.
template <typename T>
MessageInputs<T> message_inputs(const Tensor& v, const Tensor& x, const Tensor& radial, const Tensor& weight,
                                const Tensor& unit_vectors, const Tensor& centres, const Tensor& neighbours) {
  MessageInputs<T> in;
  in.n_atoms = v.size(0);
  in.n_edges = centres.size(0);
  in.n_features = v.size(2);
  in.n_radial = radial.size(1);
  in.s = nullptr;
  in.v = v.const_data_ptr<T>();
  in.x = x.const_data_ptr<T>();
  in.radial = radial.const_data_ptr<T>();
  in.weight = weight.const_data_ptr<T>();
  in.unit_vectors = unit_vectors.const_data_ptr<T>();
  in.centres = centres.const_data_ptr<int64_t>();
  in.neighbours = neighbours.const_data_ptr<int64_t>();
  return in;
}

std::tuple<Tensor, Tensor> painn_message_cpu(const Tensor& s_, const Tensor& v_, const Tensor& x_,
                                             const Tensor& radial_, const Tensor& weight_,
                                             const Tensor& unit_vectors_, const Tensor& centres_,
                                             const Tensor& neighbours_) {
  check_shapes(s_, v_, x_, radial_, weight_, unit_vectors_, centres_, neighbours_);
  const Tensor s = s_.contiguous(), v = v_.contiguous(), x = x_.contiguous(), radial = radial_.contiguous(),
               weight = weight_.contiguous(), unit_vectors = unit_vectors_.contiguous(),
               centres = centres_.contiguous(), neighbours = neighbours_.contiguous();
  Tensor s_out = at::empty_like(s), v_out = at::empty_like(v);
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "painn_message", [&] {
    MessageInputs<scalar_t> in = message_inputs<scalar_t>(v, x, radial, weight, unit_vectors, centres, neighbours);
    in.s = s.const_data_ptr<scalar_t>();
    painn_message_forward(in, s_out.data_ptr<scalar_t>(), v_out.data_ptr<scalar_t>());
  });
  return {s_out, v_out};
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> painn_message_backward_cpu(
    const Tensor& grad_s_out_, const Tensor& grad_v_out_, const Tensor& v_, const Tensor& x_, const Tensor& radial_,
    const Tensor& weight_, const Tensor& unit_vectors_, const Tensor& centres_, const Tensor& neighbours_,
    bool weight_gradient) {
  check_shapes(grad_s_out_, v_, x_, radial_, weight_, unit_vectors_, centres_, neighbours_);
  TORCH_CHECK(grad_v_out_.sizes() == v_.sizes(), "painn_message_backward: grad_v_out must be shaped like v");
  const Tensor grad_s_out = grad_s_out_.contiguous(), grad_v_out = grad_v_out_.contiguous(), v = v_.contiguous(),
               x = x_.contiguous(), radial = radial_.contiguous(), weight = weight_.contiguous(),
               unit_vectors = unit_vectors_.contiguous(), centres = centres_.contiguous(),
               neighbours = neighbours_.contiguous();
  Tensor grad_v = at::empty_like(v), grad_x = at::empty_like(x), grad_radial = at::empty_like(radial),
         grad_unit_vectors = at::empty_like(unit_vectors);
  Tensor grad_weight = weight_gradient ? at::empty_like(weight) : Tensor();
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "painn_message_backward", [&] {
    const MessageGradients<scalar_t> out{grad_v.data_ptr<scalar_t>(), grad_x.data_ptr<scalar_t>(),
                                         grad_radial.data_ptr<scalar_t>(), grad_unit_vectors.data_ptr<scalar_t>(),
                                         weight_gradient ? grad_weight.data_ptr<scalar_t>() : nullptr};
    painn_message_backward(message_inputs<scalar_t>(v, x, radial, weight, unit_vectors, centres, neighbours),
                           grad_s_out.const_data_ptr<scalar_t>(), grad_v_out.const_data_ptr<scalar_t>(), out);
  });
  return {grad_v, grad_x, grad_radial, grad_unit_vectors, grad_weight};
}

}  // namespace

void register_ops() {
  static std::once_flag once;
  // Held for the life of this shared object: a torch::Library unregisters its operators when destroyed.
  static std::unique_ptr<torch::Library> definitions, cpu_kernels, other_kernels, autograd_kernels, composite_kernels;
  std::call_once(once, [] {
    if (c10::Dispatcher::singleton().findSchema({"tpainn::painn_message", ""}).has_value()) return;
    definitions = std::make_unique<torch::Library>(torch::Library::DEF, "tpainn", std::nullopt, __FILE__, __LINE__);
    definitions->def(kForwardSchema);
    definitions->def(kBackwardSchema);
    definitions->def(kGhostExchangeSchema);
    definitions->def(kInstallGhostExchangeSchema);
    cpu_kernels = std::make_unique<torch::Library>(torch::Library::IMPL, "tpainn", c10::DispatchKey::CPU, __FILE__,
                                                   __LINE__);
    cpu_kernels->impl("painn_message", &painn_message_cpu);
    cpu_kernels->impl("painn_message_backward", &painn_message_backward_cpu);
    // Every other backend (CUDA, ...): the same operator in ATen operations, checked against the CPU kernel.
    other_kernels = std::make_unique<torch::Library>(torch::Library::IMPL, "tpainn",
                                                     c10::DispatchKey::CompositeExplicitAutograd, __FILE__, __LINE__);
    other_kernels->impl("painn_message", &painn_message_aten);
    other_kernels->impl("painn_message_backward", &painn_message_backward_aten);
    autograd_kernels = std::make_unique<torch::Library>(torch::Library::IMPL, "tpainn", c10::DispatchKey::Autograd,
                                                        __FILE__, __LINE__);
    autograd_kernels->impl("painn_message", &painn_message_autograd);
    autograd_kernels->impl("painn_message_backward", &painn_message_backward_autograd);
    // Made of torch operations (and a torch::autograd::Function) on any device; autograd comes with them.
    composite_kernels = std::make_unique<torch::Library>(torch::Library::IMPL, "tpainn",
                                                         c10::DispatchKey::CompositeImplicitAutograd, __FILE__, __LINE__);
    composite_kernels->impl("ghost_exchange", &ghost_exchange);
    composite_kernels->impl("_install_ghost_exchange", &install_ghost_exchange);
  });
}

}  // namespace tpainn::ops
