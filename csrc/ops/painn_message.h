// The PaiNN message block (python/tpainn/model/representation.py, PaiNNMessage) as fused CPU kernels, for
// inference: forward and first derivatives. For each edge e = (i <- j) with filter
//   W_e = radial[e] @ weight                                  (3F values, computed on the fly, never stored)
// and y = x_j * W_e split into (y_s, y_vv, y_vs), F each:
//   s_out_i = s_i + sum_e y_s
//   v_out_i = v_i + sum_e v_j * y_vv + y_vs * u_e              (u_e = r_ij / |r_ij|, per Cartesian row of v)
// x = phi(s) is the per-atom projection (3F); radial [E, K] the radial features, weight [K, 3F]. With
// radial = [rbf * cutoff, cutoff] and weight = [W^T; b], W_e = (W rbf + b) * cutoff, the eager filter.
#pragma once

#include <cstdint>

namespace tpainn::ops {

// Row-major, contiguous; T is float or double.
template <typename T>
struct MessageInputs {
  int64_t n_atoms, n_edges, n_features, n_radial;
  const T* s;                 // [N, F]
  const T* v;                 // [N, 3, F]
  const T* x;                 // [N, 3F]: phi(s), parts s | vv | vs
  const T* radial;            // [E, K]
  const T* weight;            // [K, 3F]
  const T* unit_vectors;      // [E, 3]
  const int64_t* centres;     // [E] i, receives the message
  const int64_t* neighbours;  // [E] j, sends it
};

// Writes s_out [N, F] and v_out [N, 3, F].
template <typename T>
void painn_message_forward(const MessageInputs<T>& in, T* s_out, T* v_out);

// Gradients of a scalar L given grad_s_out = dL/ds_out and grad_v_out = dL/dv_out (dL/ds = grad_s_out).
template <typename T>
struct MessageGradients {
  T* v;             // [N, 3, F]
  T* x;             // [N, 3F]
  T* radial;        // [E, K]
  T* unit_vectors;  // [E, 3]
  T* weight;        // [K, 3F], or null when not wanted (inference: only positions need gradients)
};

template <typename T>
void painn_message_backward(const MessageInputs<T>& in, const T* grad_s_out, const T* grad_v_out,
                            const MessageGradients<T>& out);

// How many of torch's threads the kernels' at::parallel_for runs n_tasks tasks on: at most torch.get_num_threads(),
// and 1 if this library was built without the OpenMP its threads need (tests and benchmarks report it).
int64_t parallel_threads_used(int64_t n_tasks);

}  // namespace tpainn::ops
