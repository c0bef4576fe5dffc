#include "ghost_exchange_op.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>

namespace tpainn::ops {

const char* const kGhostExchangeSchema =
    "ghost_exchange(Tensor x, Tensor v, Tensor anchor, int n_atoms) -> (Tensor x_all, Tensor v_all)";
const char* const kInstallGhostExchangeSchema = "_install_ghost_exchange(int address) -> int";

namespace {

using at::Tensor;

thread_local GhostExchange* installed = nullptr;

// Calls `exchange`'s forward or reverse on rows of either dtype.
void call(Tensor& rows, void (GhostExchange::*as_float)(float*, int64_t),
          void (GhostExchange::*as_double)(double*, int64_t), GhostExchange* exchange) {
  if (rows.scalar_type() == at::kFloat) (exchange->*as_float)(rows.data_ptr<float>(), rows.size(1));
  else (exchange->*as_double)(rows.data_ptr<double>(), rows.size(1));
}

// x [n_owned, 3F] and v [n_owned, 3, F] -> the same of all n_atoms atoms, the copies' rows from their owners
// (GhostExchange::forward); backward sends the copies' gradients home (::reverse). The exchange is saved with the
// node: the backward may run on another thread (the autograd engine's, for GPU tensors). `anchor` (the model's
// edge vectors) is on the path from the energy to the positions that are differentiated, so every exchange's
// backward runs on every rank, in the same (reverse layer) order, also where no gradient reaches its outputs:
// a rank that skipped one would pair its next reverse exchange with its neighbours' previous one.
class ExchangeFeatures : public torch::autograd::Function<ExchangeFeatures> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const Tensor& x,
                                                const Tensor& v, const Tensor& /*anchor*/, int64_t n_atoms,
                                                GhostExchange* exchange) {
    ctx->saved_data["exchange"] = reinterpret_cast<int64_t>(exchange);
    ctx->saved_data["n_owned"] = x.size(0);
    const int64_t n_owned = x.size(0), f = v.size(2);
    // The copies' rows are all written by the exchange: no need to clear them.
    Tensor rows = at::empty({n_atoms, 6 * f}, x.options().device(at::kCPU));
    rows.narrow(0, 0, n_owned).narrow(1, 0, 3 * f).copy_(x);
    rows.narrow(0, 0, n_owned).narrow(1, 3 * f, 3 * f).copy_(v.reshape({n_owned, 3 * f}));
    call(rows, &GhostExchange::forward, &GhostExchange::forward, exchange);
    return {at::empty({n_atoms, 3 * f}, x.options()).copy_(rows.narrow(1, 0, 3 * f)),
            at::empty({n_atoms, 3, f}, v.options()).copy_(rows.narrow(1, 3 * f, 3 * f).view({n_atoms, 3, f}))};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* exchange = reinterpret_cast<GhostExchange*>(ctx->saved_data["exchange"].toInt());
    const int64_t n_owned = ctx->saved_data["n_owned"].toInt(), n_atoms = grads[1].size(0), f = grads[1].size(2);
    Tensor rows = at::empty({n_atoms, 6 * f}, grads[0].options().device(at::kCPU));
    rows.narrow(1, 0, 3 * f).copy_(grads[0]);
    rows.narrow(1, 3 * f, 3 * f).copy_(grads[1].reshape({n_atoms, 3 * f}));
    call(rows, &GhostExchange::reverse, &GhostExchange::reverse, exchange);
    const Tensor owned = rows.narrow(0, 0, n_owned);
    return {at::empty({n_owned, 3 * f}, grads[0].options()).copy_(owned.narrow(1, 0, 3 * f)),
            at::empty({n_owned, 3, f}, grads[1].options()).copy_(owned.narrow(1, 3 * f, 3 * f).view({n_owned, 3, f})),
            Tensor(), Tensor(), Tensor()};
  }
};

}  // namespace

std::tuple<Tensor, Tensor> ghost_exchange(const Tensor& x, const Tensor& v, const Tensor& anchor, int64_t n_atoms) {
  TORCH_CHECK(x.dim() == 2 && v.dim() == 3 && v.size(0) == x.size(0) && v.size(1) == 3 && x.size(1) == 3 * v.size(2),
              "ghost_exchange: x must be [N, 3F] and v [N, 3, F]");
  TORCH_CHECK(n_atoms >= x.size(0), "ghost_exchange: n_atoms (", n_atoms, ") is below the ", x.size(0), " own atoms");
  if (installed == nullptr) {
    TORCH_CHECK(n_atoms == x.size(0), "ghost_exchange: ", n_atoms - x.size(0),
                " atoms are copies of atoms owned elsewhere, but no exchange is installed: only the engine's "
                "domain-decomposed path (the LAMMPS pair style on several ranks) fills them in");
    return {x, v};
  }
  const auto all = ExchangeFeatures::apply(x, v, anchor, n_atoms, installed);
  return {all[0], all[1]};
}

int64_t install_ghost_exchange(int64_t address) {
  GhostExchange* previous = installed;
  installed = reinterpret_cast<GhostExchange*>(address);
  return reinterpret_cast<int64_t>(previous);
}

namespace {
int64_t install_through_dispatcher(int64_t address) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("tpainn::_install_ghost_exchange", "")
                             .typed<int64_t(int64_t)>();
  return op.call(address);
}
}  // namespace

InstalledExchange::InstalledExchange(GhostExchange& exchange)
    : previous_(install_through_dispatcher(reinterpret_cast<int64_t>(&exchange))) {}

InstalledExchange::~InstalledExchange() { install_through_dispatcher(previous_); }

}  // namespace tpainn::ops
