// deeppot::tabulate_contract: sum_j env_j^T G(x_j) with G a table of quintic pieces, fused (no gathered
// coefficients in memory), with its exact first derivative for autograd. Same maths as the pure torch path
// EmbeddingTables.contract in deeppot/nn/tabulate.py (see that module for the table layout and the linear
// continuation outside the table); this file depends on libtorch only, so the LAMMPS plugin can compile it too.
// Compile with -O3 -march=native: the inner loops rely on vectorisation (about 3x faster than the x86-64 baseline).
//
// table: rows x 6 x M (contiguous), x: n x w, env: n x w x c  ->  n x c x M.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

// Grid: n_below intervals of stride1 from bottom (two-sided tables), n_first of stride0 from lower, then stride1
// from upper to top; rows row_offset .. row_offset + nrows of the table.
struct TableInfo {
  double bottom, lower, upper, top, stride0, stride1;
  int64_t n_below, n_first, row_offset, nrows;
};

// table row of x and the polynomial basis q (value) and dq (derivative wrt x); see EmbeddingTables._locate
template <typename T>
inline int64_t locate(const TableInfo& info, T x, T q[6], T dq[6]) {
  const T inside = std::min(std::max(x, static_cast<T>(info.bottom)), static_cast<T>(info.top));
  int64_t row;
  if (inside < info.lower) {
    row = std::min(static_cast<int64_t>(std::floor((inside - info.bottom) / info.stride1)),
                   std::max(info.n_below - 1, int64_t(0)));
  } else if (inside < info.upper) {
    row = info.n_below + static_cast<int64_t>(std::floor((inside - info.lower) / info.stride0));
  } else {
    row = info.n_below + info.n_first + static_cast<int64_t>(std::floor((inside - info.upper) / info.stride1));
  }
  row = std::min(std::max(row, int64_t(0)), info.nrows - 1);
  const T start = row < info.n_below ? static_cast<T>(info.bottom + row * info.stride1)
                  : row < info.n_below + info.n_first
                      ? static_cast<T>(info.lower + (row - info.n_below) * info.stride0)
                      : static_cast<T>(info.upper + (row - info.n_below - info.n_first) * info.stride1);
  const T t = inside - start;
  const T beyond = x - inside;
  T power[6];
  power[0] = 1;
  for (int k = 1; k < 6; ++k) power[k] = power[k - 1] * t;
  q[0] = 1;
  dq[0] = 0;
  for (int k = 1; k < 6; ++k) {
    dq[k] = k * power[k - 1];
    q[k] = power[k] + dq[k] * beyond;
  }
  return info.row_offset + row;
}

// Per center: locate every neighbor once, then sweep the M outputs in blocks of L; a block's C x L sums stay
// in registers over all neighbors (only the table is read in the inner loop).
template <typename T, int C>
void contract_forward(const at::Tensor& table, const at::Tensor& x, const at::Tensor& env, const TableInfo& info,
                      at::Tensor& out) {
  constexpr int L = 8;
  const int64_t n = x.size(0), w = x.size(1), m = table.size(2);
  const T* tab = table.data_ptr<T>();
  const T* xs = x.data_ptr<T>();
  const T* es = env.data_ptr<T>();
  T* os = out.data_ptr<T>();
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    std::vector<const T*> coef(w);
    std::vector<T> basis(w * 6);
    for (int64_t i = begin; i < end; ++i) {
      for (int64_t j = 0; j < w; ++j) {
        T dq[6];
        coef[j] = tab + locate<T>(info, xs[i * w + j], basis.data() + j * 6, dq) * 6 * m;
      }
      const T* e = es + i * w * C;
      T* acc = os + i * C * m;
      int64_t k0 = 0;
      for (; k0 + L <= m; k0 += L) {
        T sum[C][L] = {};
        for (int64_t j = 0; j < w; ++j) {
          const T* cj = coef[j] + k0;
          const T* q = basis.data() + j * 6;
          T g[L];
          for (int l = 0; l < L; ++l) {
            g[l] = q[0] * cj[l] + q[1] * cj[m + l] + q[2] * cj[2 * m + l] + q[3] * cj[3 * m + l] +
                   q[4] * cj[4 * m + l] + q[5] * cj[5 * m + l];
          }
          for (int a = 0; a < C; ++a) {
            const T ea = e[j * C + a];
            for (int l = 0; l < L; ++l) sum[a][l] += ea * g[l];
          }
        }
        for (int a = 0; a < C; ++a) {
          for (int l = 0; l < L; ++l) acc[a * m + k0 + l] = sum[a][l];
        }
      }
      for (int64_t k = k0; k < m; ++k) {
        T sum[C] = {};
        for (int64_t j = 0; j < w; ++j) {
          const T* cj = coef[j] + k;
          const T* q = basis.data() + j * 6;
          const T g = q[0] * cj[0] + q[1] * cj[m] + q[2] * cj[2 * m] + q[3] * cj[3 * m] + q[4] * cj[4 * m] +
                      q[5] * cj[5 * m];
          for (int a = 0; a < C; ++a) sum[a] += e[j * C + a] * g;
        }
        for (int a = 0; a < C; ++a) acc[a * m + k] = sum[a];
      }
    }
  });
}

// One pass over the M outputs per neighbor, in blocks of 8 independent lanes (vectorised without
// reassociating sums): dL/denv[a] = sum_k dL/dout[a, k] G_k, dL/dx = sum_k (sum_a dL/dout[a, k] env[a]) G'_k.
template <typename T, int C>
void contract_backward(const at::Tensor& table, const at::Tensor& x, const at::Tensor& env, const at::Tensor& grad,
                       const TableInfo& info, at::Tensor& grad_x, at::Tensor& grad_env) {
  constexpr int L = 8;
  const int64_t n = x.size(0), w = x.size(1), m = table.size(2);
  const T* tab = table.data_ptr<T>();
  const T* xs = x.data_ptr<T>();
  const T* es = env.data_ptr<T>();
  const T* gs = grad.data_ptr<T>();
  T* gx = grad_x.data_ptr<T>();
  T* ge = grad_env.data_ptr<T>();
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T* gi = gs + i * C * m;  // dL/d(out_i), C x M
      for (int64_t j = 0; j < w; ++j) {
        T q[6], dq[6];
        const T* coef = tab + locate<T>(info, xs[i * w + j], q, dq) * 6 * m;
        const T* e = es + (i * w + j) * C;
        T lane_env[C][L] = {};
        T lane_x[L] = {};
        auto step = [&](int64_t k, int l) {
          const T c1 = coef[m + k], c2 = coef[2 * m + k], c3 = coef[3 * m + k], c4 = coef[4 * m + k],
                  c5 = coef[5 * m + k];
          const T g = q[0] * coef[k] + q[1] * c1 + q[2] * c2 + q[3] * c3 + q[4] * c4 + q[5] * c5;
          const T dg = dq[1] * c1 + dq[2] * c2 + dq[3] * c3 + dq[4] * c4 + dq[5] * c5;
          T mixed = 0;
          for (int a = 0; a < C; ++a) {
            const T ga = gi[a * m + k];
            mixed += ga * e[a];
            lane_env[a][l] += ga * g;
          }
          lane_x[l] += mixed * dg;
        };
        int64_t k0 = 0;
        for (; k0 + L <= m; k0 += L) {
          for (int l = 0; l < L; ++l) step(k0 + l, l);
        }
        for (int64_t k = k0; k < m; ++k) step(k, 0);
        auto total = [](const T* lane) {
          return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
        };
        for (int a = 0; a < C; ++a) ge[(i * w + j) * C + a] = total(lane_env[a]);
        gx[i * w + j] = total(lane_x);
      }
    }
  });
}

template <typename T>
void contract_backward_any(const at::Tensor& table, const at::Tensor& x, const at::Tensor& env,
                           const at::Tensor& grad, const TableInfo& info, at::Tensor& grad_x, at::Tensor& grad_env) {
  switch (env.size(2)) {
    case 1: return contract_backward<T, 1>(table, x, env, grad, info, grad_x, grad_env);
    case 4: return contract_backward<T, 4>(table, x, env, grad, info, grad_x, grad_env);
    default: TORCH_CHECK(false, "tabulate_contract: env rows of 1 or 4 values are supported");
  }
}

TableInfo make_info(double bottom, double lower, double upper, double top, double stride0, double stride1,
                    int64_t n_below, int64_t n_first, int64_t row_offset, int64_t nrows) {
  return TableInfo{bottom, lower, upper, top, stride0, stride1, n_below, n_first, row_offset, nrows};
}

void check_inputs(const at::Tensor& table, const at::Tensor& x, const at::Tensor& env) {
  TORCH_CHECK(table.dim() == 3 && table.size(1) == 6, "tabulate_contract: table must be rows x 6 x M");
  TORCH_CHECK(x.dim() == 2 && env.dim() == 3 && env.size(0) == x.size(0) && env.size(1) == x.size(1),
              "tabulate_contract: x must be n x w and env n x w x c");
  TORCH_CHECK(env.size(2) == 1 || env.size(2) == 4, "tabulate_contract: env rows of 1 or 4 values are supported");
  TORCH_CHECK(x.scalar_type() == table.scalar_type() && env.scalar_type() == table.scalar_type(),
              "tabulate_contract: table, x and env must have one dtype");
}

// ---------------------------------------------------------------- CPU kernels (below autograd)
at::Tensor forward_cpu(const at::Tensor& table, const at::Tensor& x, const at::Tensor& env, double bottom,
                       double lower, double upper, double top, double stride0, double stride1, int64_t n_below,
                       int64_t n_first, int64_t row_offset, int64_t nrows) {
  check_inputs(table, x, env);
  at::Tensor tab = table.contiguous(), xc = x.contiguous(), ec = env.contiguous();
  at::Tensor out = at::empty({x.size(0), env.size(2), table.size(2)}, table.options());
  const TableInfo info = make_info(bottom, lower, upper, top, stride0, stride1, n_below, n_first, row_offset, nrows);
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "tabulate_contract", [&] {
    if (ec.size(2) == 1) {
      contract_forward<scalar_t, 1>(tab, xc, ec, info, out);
    } else {
      contract_forward<scalar_t, 4>(tab, xc, ec, info, out);
    }
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> backward_cpu(const at::Tensor& grad, const at::Tensor& table, const at::Tensor& x,
                                                const at::Tensor& env, double bottom, double lower, double upper,
                                                double top, double stride0, double stride1, int64_t n_below,
                                                int64_t n_first, int64_t row_offset, int64_t nrows) {
  check_inputs(table, x, env);
  at::Tensor tab = table.contiguous(), xc = x.contiguous(), ec = env.contiguous(), gc = grad.contiguous();
  at::Tensor grad_x = at::empty_like(xc), grad_env = at::empty_like(ec);
  const TableInfo info = make_info(bottom, lower, upper, top, stride0, stride1, n_below, n_first, row_offset, nrows);
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "tabulate_contract_backward", [&] {
    contract_backward_any<scalar_t>(tab, xc, ec, gc, info, grad_x, grad_env);
  });
  return {grad_x, grad_env};
}

// ---------------------------------------------------------------- autograd: backward is the op below
class TabulateContract : public torch::autograd::Function<TabulateContract> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& table, const at::Tensor& x,
                            const at::Tensor& env, double bottom, double lower, double upper, double top,
                            double stride0, double stride1, int64_t n_below, int64_t n_first, int64_t row_offset,
                            int64_t nrows) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("deeppot::tabulate_contract", "")
                         .typed<decltype(forward_cpu)>();
    ctx->save_for_backward({table, x, env});
    ctx->saved_data["bottom"] = bottom;
    ctx->saved_data["n_below"] = n_below;
    ctx->saved_data["lower"] = lower;
    ctx->saved_data["upper"] = upper;
    ctx->saved_data["top"] = top;
    ctx->saved_data["stride0"] = stride0;
    ctx->saved_data["stride1"] = stride1;
    ctx->saved_data["n_first"] = n_first;
    ctx->saved_data["row_offset"] = row_offset;
    ctx->saved_data["nrows"] = nrows;
    return op.call(table, x, env, bottom, lower, upper, top, stride0, stride1, n_below, n_first, row_offset, nrows);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(!at::GradMode::is_enabled(),  // enabled only in a create_graph backward
                "a compressed model has first derivatives only (forces, virials); train the uncompressed model");
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("deeppot::tabulate_contract_backward", "")
                         .typed<decltype(backward_cpu)>();
    auto saved = ctx->get_saved_variables();
    auto d = [&](const char* key) { return ctx->saved_data[key].toDouble(); };
    auto i = [&](const char* key) { return ctx->saved_data[key].toInt(); };
    auto result = op.call(grads[0], saved[0], saved[1], saved[2], d("bottom"), d("lower"), d("upper"), d("top"),
                          d("stride0"), d("stride1"), i("n_below"), i("n_first"), i("row_offset"), i("nrows"));
    torch::autograd::variable_list out(14);  // table, x, env, then the 11 scalars (no gradient)
    out[1] = std::get<0>(result);
    out[2] = std::get<1>(result);
    return out;
  }
};

at::Tensor forward_autograd(const at::Tensor& table, const at::Tensor& x, const at::Tensor& env, double bottom,
                            double lower, double upper, double top, double stride0, double stride1, int64_t n_below,
                            int64_t n_first, int64_t row_offset, int64_t nrows) {
  return TabulateContract::apply(table, x, env, bottom, lower, upper, top, stride0, stride1, n_below, n_first,
                                 row_offset, nrows);
}

}  // namespace

// Two operators, so that graph capture (make_fx, AOTInductor) records both; shapes for fake tensors are
// registered in Python (deeppot/nn/tabulate_kernel.py).
TORCH_LIBRARY(deeppot, m) {
  m.def(
      "tabulate_contract(Tensor table, Tensor x, Tensor env, float bottom, float lower, float upper, float top, "
      "float stride0, float stride1, int n_below, int n_first, int row_offset, int nrows) -> Tensor");
  m.def(
      "tabulate_contract_backward(Tensor grad, Tensor table, Tensor x, Tensor env, float bottom, float lower, "
      "float upper, float top, float stride0, float stride1, int n_below, int n_first, int row_offset, int nrows) "
      "-> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(deeppot, CPU, m) {
  m.impl("tabulate_contract", &forward_cpu);
  m.impl("tabulate_contract_backward", &backward_cpu);
}

TORCH_LIBRARY_IMPL(deeppot, Autograd, m) { m.impl("tabulate_contract", &forward_autograd); }
