// Autograd kernels of tpainn::painn_message and tpainn::painn_message_backward (painn_message_autograd.h).
//
// Why the backward of the backward needs no kernel of its own: with f_e = radial_e · weight (the edge's filter),
// the operator is the gradient of one scalar,
//   Φ(g_s, g_v, v, x, radial, weight, u) = Σ_e  g_s,i · (x_s,j ∘ f_s)                         (product 1)
//                                         + Σ_a g_v,i,a · (v_j,a ∘ x_vv,j ∘ f_vv)              (product 2)
//                                         + Σ_a g_v,i,a · (x_vs,j ∘ f_vs) u_e,a                (product 3):
// s_out = s + ∂Φ/∂g_s and v_out = v + ∂Φ/∂g_v; the backward returns ∂Φ/∂(v, x, radial, u, weight) (and g_v + ∂Φ/∂v
// for v). Φ is linear in each of the seven blocks separately, so for cotangents a of the backward's outputs the
// gradient of <a, backward> is that of DΦ[a] = Σ_l Φ_l(block l := a_l), where Φ_l is the sum of the products that
// contain block l. Each Φ_l(block l := a_l) is Φ at other inputs (block l replaced, the products without it
// switched off by zeroing parts of x): its ∂/∂(g_s, g_v) is a forward call, its ∂/∂(other blocks) a backward call.
// The blocks go in three groups, {v, u} (products 2 and 3 only), {x} and {radial, weight} (one filter
// a_R · W + R · a_W = [a_R | R] · [W; a_W]): three forward and three backward calls. The calls go through the
// dispatcher with autograd, so they are differentiable in turn.
#include "painn_message_autograd.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>

#include "painn_message_aten.h"

namespace tpainn::ops {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The operators through the dispatcher (the ATen kernels give their signatures).
const c10::TypedOperatorHandle<decltype(painn_message_aten)>& forward_op() {
  static const auto handle = c10::Dispatcher::singleton()
                                 .findSchemaOrThrow("tpainn::painn_message", "")
                                 .typed<decltype(painn_message_aten)>();
  return handle;
}

const c10::TypedOperatorHandle<decltype(painn_message_backward_aten)>& backward_op() {
  static const auto handle = c10::Dispatcher::singleton()
                                 .findSchemaOrThrow("tpainn::painn_message_backward", "")
                                 .typed<decltype(painn_message_backward_aten)>();
  return handle;
}

// The backward operator's differentiable inputs (Φ's blocks), or gradients or cotangents for them.
struct Blocks {
  Tensor gs, gv, v, x, radial, weight, u;
};

// total += term, where an undefined total is zero.
void accumulate(Tensor& total, const Tensor& term) { total = total.defined() ? total + term : term; }

// Blocks {v, u}: Φ_v(v := a_v) + Φ_u(u := a_u), i.e. products 2 and 3 (x_s zeroed) with those replacements.
void add_vector_terms(const Blocks& z, const Blocks& a, const Tensor& centres, const Tensor& neighbours,
                      bool weight_wanted, Blocks& grad) {
  const int64_t f = z.v.size(2);
  const Tensor no_s = at::zeros_like(z.gs), x_v = at::cat({no_s, z.x.narrow(1, f, 2 * f)}, 1);
  const Tensor a_v = a.v.defined() ? a.v : at::zeros_like(z.v), a_u = a.u.defined() ? a.u : at::zeros_like(z.u);
  // v_out = a_v + ∂Φ_v/∂g_v: a_v is also the derivative of <a_v, g_v> (the backward's v output holds g_v).
  accumulate(grad.gv, std::get<1>(forward_op().call(no_s, a_v, x_v, z.radial, z.weight, a_u, centres, neighbours)));
  const auto d = backward_op().call(no_s, z.gv, a_v, x_v, z.radial, z.weight, a_u, centres, neighbours, weight_wanted);
  accumulate(grad.x, std::get<1>(d));
  accumulate(grad.radial, std::get<2>(d));
  if (weight_wanted) accumulate(grad.weight, std::get<4>(d));
}

// Block x: Φ(x := a_x), every product.
void add_projection_terms(const Blocks& z, const Blocks& a, const Tensor& centres, const Tensor& neighbours,
                          bool weight_wanted, Blocks& grad) {
  const auto m = forward_op().call(at::zeros_like(z.gs), z.v, a.x, z.radial, z.weight, z.u, centres, neighbours);
  accumulate(grad.gs, std::get<0>(m));
  accumulate(grad.gv, std::get<1>(m) - z.v);
  const auto d = backward_op().call(z.gs, z.gv, z.v, a.x, z.radial, z.weight, z.u, centres, neighbours, weight_wanted);
  accumulate(grad.v, std::get<0>(d) - z.gv);
  accumulate(grad.radial, std::get<2>(d));
  accumulate(grad.u, std::get<3>(d));
  if (weight_wanted) accumulate(grad.weight, std::get<4>(d));
}

// Blocks radial and weight: Φ(f := a_R · W + R · a_W), every product.
void add_filter_terms(const Blocks& z, const Blocks& a, const Tensor& centres, const Tensor& neighbours,
                      bool weight_wanted, Blocks& grad) {
  const bool both = a.radial.defined() && a.weight.defined();
  const int64_t k = z.radial.size(1);
  const Tensor radial = both ? at::cat({a.radial, z.radial}, 1) : a.radial.defined() ? a.radial : z.radial;
  const Tensor weight = both ? at::cat({z.weight, a.weight}, 0) : a.weight.defined() ? a.weight : z.weight;
  const auto m = forward_op().call(at::zeros_like(z.gs), z.v, z.x, radial, weight, z.u, centres, neighbours);
  accumulate(grad.gs, std::get<0>(m));
  accumulate(grad.gv, std::get<1>(m) - z.v);
  const bool weight_term = weight_wanted && a.radial.defined();
  const auto d = backward_op().call(z.gs, z.gv, z.v, z.x, radial, weight, z.u, centres, neighbours, weight_term);
  accumulate(grad.v, std::get<0>(d) - z.gv);
  accumulate(grad.x, std::get<1>(d));
  accumulate(grad.u, std::get<3>(d));
  // ∂/∂radial of Φ(weight := a_W) is the radial gradient's part that multiplies a_W; ∂/∂weight of
  // Φ(radial := a_R) the weight gradient's part that multiplies a_R.
  if (a.weight.defined()) accumulate(grad.radial, both ? std::get<2>(d).narrow(1, k, k) : std::get<2>(d));
  if (weight_term) accumulate(grad.weight, both ? std::get<4>(d).narrow(0, 0, k) : std::get<4>(d));
}

class Message : public torch::autograd::Function<Message> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& s, const Tensor& v, const Tensor& x,
                               const Tensor& radial, const Tensor& weight, const Tensor& unit_vectors,
                               const Tensor& centres, const Tensor& neighbours) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto [s_out, v_out] = forward_op().call(s, v, x, radial, weight, unit_vectors, centres, neighbours);
    ctx->save_for_backward({v, x, radial, weight, unit_vectors, centres, neighbours});
    return {s_out, v_out};
  }

  // Absent output gradients arrive as zeros (the context materialises them).
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto grads = backward_op().call(grad_outputs[0], grad_outputs[1], saved[0], saved[1], saved[2], saved[3],
                                          saved[4], saved[5], saved[6], ctx->needs_input_grad(4));
    // s_out = s + messages: dL/ds = dL/ds_out.
    return {grad_outputs[0],    std::get<0>(grads), std::get<1>(grads), std::get<2>(grads),
            std::get<4>(grads), std::get<3>(grads), Tensor(),           Tensor()};
  }
};

class MessageBackward : public torch::autograd::Function<MessageBackward> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& grad_s_out, const Tensor& grad_v_out,
                               const Tensor& v, const Tensor& x, const Tensor& radial, const Tensor& weight,
                               const Tensor& unit_vectors, const Tensor& centres, const Tensor& neighbours,
                               bool weight_gradient) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    const auto grads = backward_op().call(grad_s_out, grad_v_out, v, x, radial, weight, unit_vectors, centres,
                                          neighbours, weight_gradient);
    ctx->save_for_backward({grad_s_out, grad_v_out, v, x, radial, weight, unit_vectors, centres, neighbours});
    ctx->set_materialize_grads(false);  // an absent cotangent adds nothing: its terms are skipped
    variable_list out{std::get<0>(grads), std::get<1>(grads), std::get<2>(grads), std::get<3>(grads)};
    if (weight_gradient) out.push_back(std::get<4>(grads));  // outputs are defined tensors: no weight, no output
    return out;
  }

  // cotangents: of (grad_v, grad_x, grad_radial, grad_unit_vectors[, grad_weight]), each possibly undefined.
  static variable_list backward(AutogradContext* ctx, variable_list cotangents) {
    const auto saved = ctx->get_saved_variables();
    const Blocks z{saved[0], saved[1], saved[2], saved[3], saved[4], saved[5], saved[6]};
    const Tensor &centres = saved[7], &neighbours = saved[8];
    const Blocks a{Tensor(), Tensor(), cotangents[0], cotangents[1], cotangents[2],
                   cotangents.size() > 4 ? cotangents[4] : Tensor(), cotangents[3]};
    const bool weight_wanted = ctx->needs_input_grad(5);
    Blocks grad;
    if (a.v.defined() || a.u.defined()) add_vector_terms(z, a, centres, neighbours, weight_wanted, grad);
    if (a.x.defined()) add_projection_terms(z, a, centres, neighbours, weight_wanted, grad);
    if (a.radial.defined() || a.weight.defined()) add_filter_terms(z, a, centres, neighbours, weight_wanted, grad);
    return {grad.gs, grad.gv, grad.v, grad.x, grad.radial, grad.weight, grad.u, Tensor(), Tensor(), Tensor()};
  }
};

}  // namespace

std::tuple<Tensor, Tensor> painn_message_autograd(const Tensor& s, const Tensor& v, const Tensor& x,
                                                  const Tensor& radial, const Tensor& weight,
                                                  const Tensor& unit_vectors, const Tensor& centres,
                                                  const Tensor& neighbours) {
  auto out = Message::apply(s, v, x, radial, weight, unit_vectors, centres, neighbours);
  return {out[0], out[1]};
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> painn_message_backward_autograd(
    const Tensor& grad_s_out, const Tensor& grad_v_out, const Tensor& v, const Tensor& x, const Tensor& radial,
    const Tensor& weight, const Tensor& unit_vectors, const Tensor& centres, const Tensor& neighbours,
    bool weight_gradient) {
  auto out = MessageBackward::apply(grad_s_out, grad_v_out, v, x, radial, weight, unit_vectors, centres, neighbours,
                                    weight_gradient);
  return {out[0], out[1], out[2], out[3], weight_gradient ? out[4] : Tensor()};
}

}  // namespace tpainn::ops
