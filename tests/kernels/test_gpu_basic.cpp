// test_gpu_basic.cpp: the GPU backend's memory, GEMM and basic kernel families (elementwise,
// reductions, optimizers, loss, norms) against Device::cpu, the oracle.
//
// Every check runs on the devices FORGE_TEST_DEVICES selects (test_devices.h): by default
// Device::sim, and Device::cuda too when a GPU is usable (otherwise a MESSAGE says it was skipped).
// Shapes are multiples of no tile size (1, 17, 65, 101 rows; widths 3, 31, 33, 257). The CTest
// registration runs the file twice, FORGE_SIM_ORDER=forward and reverse: a kernel whose result
// depends on the order lanes and warps run in has a race.
//
// Tolerances come from the math: a sum of m float terms may differ from the CPU's (double) sum by
// about m * eps * sum|terms| (serial) or log2(m) * eps * sum|terms| (tree); we allow m * eps * the
// sum of magnitudes, eps = 2^-23, as stated next to each check. Single roundings of the same
// expression (gather, binary ops, dropout) must match exactly; libm functions may differ by a few
// ulps between the host and a GPU.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#if FORGE_SIM_BUILD
#include "engine/cuda/blas.h"         // the host cuBLAS stand-in, tested directly below
#include "engine/cuda/gpu_runtime.h"  // the sim's device_malloc, ditto
#include "kernels/launch_utils.cuh"   // coalesce_views, ditto
#include "kernels/sim/runtime.h"      // the sim's last error
#include "kernels/slab_reduce.cuh"    // the slab splits, ditto
#endif
#include "engine/cuda/builtin.h"
#include "engine/gelu_math.h"
#include "engine/ops.h"
#include "engine/optim/optimizer.h"
#include "engine/random.h"
#include "engine/tensor.h"
#include "tests/kernels/test_devices.h"

using namespace forge;
using forge::testing::gpu_test_devices;

namespace {

const bool backends_registered = (register_builtin_backends(), true);
constexpr float kEps = std::numeric_limits<float>::epsilon();

// Runs `body` on each GPU device under test (FORGE_TEST_DEVICES, test_devices.h).
void for_each_gpu(const std::function<void(Device)>& body) {
  REQUIRE(backends_registered);
  for (Device device : gpu_test_devices()) {
    INFO("device " << std::string(device_name(device)));
    body(device);
  }
}

std::vector<float> random_values(size_t n, uint64_t seed, float low = -1.f, float high = 1.f) {
  Generator gen(seed);
  std::vector<float> v(n);
  for (float& x : v) x = float(low + (high - low) * gen.uniform());
  return v;
}

// A buffer on a device's backend, filled from the host (NaN when no values are given, so an
// element a kernel forgets to write shows up).
template <class T = float>
struct DeviceBuffer {
  Backend& be;
  size_t n;
  T* ptr;
  DeviceBuffer(Device d, const std::vector<T>& values)
      : be(backend(d)), n(values.size()), ptr(static_cast<T*>(be.allocate(n * sizeof(T)))) {
    be.copy_from_host(ptr, values.data(), n * sizeof(T));
  }
  DeviceBuffer(Device d, size_t count)
      : DeviceBuffer(d, std::vector<T>(count, T(std::numeric_limits<float>::quiet_NaN()))) {}
  ~DeviceBuffer() { be.deallocate(ptr, n * sizeof(T)); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  std::vector<T> host() const {
    std::vector<T> v(n);
    be.copy_to_host(v.data(), ptr, n * sizeof(T));
    return v;
  }
};

// |got - want| <= tol elementwise (tol absolute, from the check's own error bound).
void check_near(const std::vector<float>& got, const std::vector<float>& want, float tol,
                const std::string& what) {
  REQUIRE(got.size() == want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 3; ++i) {
    const bool ok =
        std::fabs(got[i] - want[i]) <= tol || (std::isnan(got[i]) && std::isnan(want[i]));
    if (!ok) {
      ++bad;
      FAIL_CHECK(what << "[" << i << "]: got " << got[i] << ", want " << want[i] << " (tol " << tol
                      << ")");
    }
  }
  CHECK_MESSAGE(bad == 0, what);
}

// Relative version: |got - want| <= rel * |want| + abs_floor.
void check_rel(const std::vector<float>& got, const std::vector<float>& want, float rel,
               float abs_floor, const std::string& what) {
  REQUIRE(got.size() == want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 3; ++i) {
    if (!(std::fabs(got[i] - want[i]) <= rel * std::fabs(want[i]) + abs_floor)) {
      ++bad;
      FAIL_CHECK(what << "[" << i << "]: got " << got[i] << ", want " << want[i]);
    }
  }
  CHECK_MESSAGE(bad == 0, what);
}

Backend& cpu() {
  return backend(Device::cpu);
}

StridedView make_view(std::vector<int64_t> shape, std::vector<int64_t> strides, int64_t offset) {
  StridedView v;
  v.ndim = int(shape.size());
  for (int i = 0; i < v.ndim; ++i) {
    v.shape[i] = shape[i];
    v.strides[i] = strides[i];
  }
  v.offset = offset;
  return v;
}

}  // namespace

// ---- memory and registration ------------------------------------------------------------------

TEST_CASE("gpu memory: round trips, device copies, and the caching allocator reuses blocks") {
  for_each_gpu([](Device d) {
    const std::vector<float> values = random_values(1001, 1);
    DeviceBuffer<float> a(d, values), b(d, values.size());
    backend(d).copy(b.ptr, a.ptr, values.size() * sizeof(float));
    CHECK(b.host() == values);
    // A freed block goes back to its bin (1000 and 1010 bytes share the 1024-byte bin) and is the
    // next block of that bin handed out.
    Backend& be = backend(d);
    void* first = be.allocate(1000);
    be.deallocate(first, 1000);
    void* second = be.allocate(1010);
    CHECK(second == first);
    be.deallocate(second, 1010);
  });
}

TEST_CASE("device cuda without a usable GPU is a clear error, not a crash") {
  REQUIRE(backends_registered);
  if (std::system("nvidia-smi -L > /dev/null 2>&1") == 0) {
    MESSAGE("nvidia-smi finds a GPU: nothing to check here");
    return;
  }
  try {
    backend(Device::cuda);
    FAIL("backend(Device::cuda) succeeded without a GPU");
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    INFO(message);
    CHECK(message.find("cuda") != std::string::npos);
    // Built with FORGE_CUDA: the driver's answer; without it: how to build it in.
    CHECK((message.find("no usable GPU") != std::string::npos ||
           message.find("not built into this program") != std::string::npos));
  }
}

TEST_CASE("FORGE_TEST_DEVICES: the devices it lists, and one that cannot be created fails") {
  using forge::testing::gpu_test_devices_for;
  CHECK(gpu_test_devices_for("sim") == std::vector<Device>{Device::sim});
  CHECK(gpu_test_devices_for(nullptr).front() == Device::sim);  // unset: sim, cuda if usable
  CHECK_THROWS_AS(gpu_test_devices_for("sim,gpu"), std::invalid_argument);
  CHECK_THROWS_AS(gpu_test_devices_for(""), std::invalid_argument);
  if (std::system("nvidia-smi -L > /dev/null 2>&1") == 0) {
    CHECK(gpu_test_devices_for("cuda") == std::vector<Device>{Device::cuda});
    return;
  }
  // No GPU here: asked for cuda, the tests must fail instead of passing with a MESSAGE.
  try {
    gpu_test_devices_for("cuda");
    FAIL("FORGE_TEST_DEVICES=cuda was accepted without a GPU");
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    INFO(message);
    CHECK(message.find("FORGE_TEST_DEVICES='cuda' asks for cuda") != std::string::npos);
  }
}

#if FORGE_SIM_BUILD
TEST_CASE("sim cudaMalloc: a failed allocation leaves out-of-memory as the last error until read") {
  if (!forge::testing::sim_selected()) return;  // an emulator check: FORGE_TEST_DEVICES=cuda
  CHECK(sim::take_last_error() == cudaSuccess);
  void* p = nullptr;
  CHECK(sim::device_malloc(&p, size_t(1) << 60) == cudaErrorMemoryAllocation);
  CHECK(p == nullptr);
  CHECK(sim::device_malloc(&p, 64) == cudaSuccess);  // a later success does not clear it
  sim::device_free(p);
  CHECK(sim::take_last_error() == cudaErrorMemoryAllocation);
  CHECK(sim::take_last_error() == cudaSuccess);  // reading it cleared it
  // The test hook makes the backend's next device allocation fail in exactly that way.
  gpu_sim::fail_next_device_malloc();
  CHECK_THROWS_WITH(gpu_sim::device_malloc(256), doctest::Contains("out of memory"));
  CHECK(sim::take_last_error() == cudaErrorMemoryAllocation);
}
#endif

TEST_CASE("gpu memory: after an out-of-memory retry the next kernel launch does not fail") {
  for_each_gpu([](Device d) {
    Backend& be = backend(d);
    // A cached block, so that the retry has something to release; then a size no bin holds yet.
    be.deallocate(be.allocate(4096), 4096);
    const size_t bytes = (size_t(3) << 20) + 4 * 1237;
    fail_next_gpu_allocation(d);
    float* p = static_cast<float*>(be.allocate(bytes));  // fails once inside, then succeeds
    REQUIRE(p != nullptr);
    // Before the fix, CUDA's last error still said "out of memory" and this launch threw it.
    CHECK_NOTHROW(be.fill(p, int64_t(bytes / sizeof(float)), 2.f));
    std::vector<float> back(bytes / sizeof(float));
    be.copy_to_host(back.data(), p, bytes);
    CHECK(back.front() == 2.f);
    CHECK(back.back() == 2.f);
    be.deallocate(p, bytes);
  });
}

// ---- GEMM -------------------------------------------------------------------------------------

TEST_CASE("gpu gemm: every transpose combination, odd shapes, padded leading dimensions, batches") {
  struct Case {
    int m, n, k, batch;
  };
  for_each_gpu([](Device d) {
    for (const Case& s : {Case{1, 1, 1, 1}, Case{17, 33, 31, 3}, Case{65, 3, 257, 2}}) {
      for (int trans = 0; trans < 4; ++trans) {
        for (float beta : {0.f, 0.3f}) {
          const bool ta = trans & 1, tb = trans & 2;
          // Stored shapes (row-major) with 2 columns of padding; batches 5 elements apart more.
          const int a_rows = ta ? s.k : s.m, a_cols = ta ? s.m : s.k;
          const int b_rows = tb ? s.n : s.k, b_cols = tb ? s.k : s.n;
          const int lda = a_cols + 2, ldb = b_cols + 2, ldc = s.n + 2;
          const int64_t sa = int64_t(a_rows) * lda + 5, sb = int64_t(b_rows) * ldb + 5,
                        sc = int64_t(s.m) * ldc + 5;
          const auto a = random_values(sa * s.batch, 10 + trans),
                     b = random_values(sb * s.batch, 20);
          auto c = random_values(sc * s.batch, 30);
          // beta = 0: C is not read (cuBLAS's rule), so NaN there must not leak into the result.
          if (beta == 0.f) c.assign(c.size(), std::numeric_limits<float>::quiet_NaN());
          std::vector<float> want = c;
          cpu().gemm(ta, tb, s.m, s.n, s.k, 0.7f, a.data(), lda, sa, b.data(), ldb, sb, beta,
                     want.data(), ldc, sc, s.batch);
          DeviceBuffer<float> da(d, a), db(d, b), dc(d, c);
          backend(d).gemm(ta, tb, s.m, s.n, s.k, 0.7f, da.ptr, lda, sa, db.ptr, ldb, sb, beta,
                          dc.ptr, ldc, sc, s.batch);
          const auto got = dc.host();
          // |a|, |b|, |c| < 1: each dot product of k terms is within k * eps * k of exact (and the
          // padding, never written, stays equal: NaN == NaN is accepted by check_near).
          INFO("m=" << s.m << " n=" << s.n << " k=" << s.k << " ta=" << ta << " tb=" << tb
                    << " beta=" << beta);
          check_near(got, want, 2.f * s.k * s.k * kEps + 1e-6f, "gemm C");
        }
      }
    }
  });
}

TEST_CASE("gpu linear: bias in the GEMM's epilogue and its gradient, with and without a bias") {
  for_each_gpu([](Device d) {
    for (int rows : {1, 17, 101}) {
      const int in = 31, out = 33;
      const auto x = random_values(size_t(rows) * in, 40), w = random_values(size_t(out) * in, 41),
                 bias = random_values(out, 42), gy = random_values(size_t(rows) * out, 43);
      for (bool with_bias : {true, false}) {
        INFO("rows=" << rows << " bias=" << with_bias);
        std::vector<float> want_y(size_t(rows) * out), want_gw(size_t(out) * in), want_gb(out);
        cpu().linear_forward(rows, in, out, x.data(), w.data(), with_bias ? bias.data() : nullptr,
                             want_y.data());
        cpu().linear_backward_weight(rows, in, out, x.data(), gy.data(), want_gw.data(),
                                     with_bias ? want_gb.data() : nullptr);
        DeviceBuffer<float> dx(d, x), dw(d, w), db(d, bias), dgy(d, gy);
        DeviceBuffer<float> dy(d, size_t(rows) * out), dgw(d, size_t(out) * in), dgb(d, out);
        const uint64_t launches = gpu_launch_count(d);
        backend(d).linear_forward(rows, in, out, dx.ptr, dw.ptr, with_bias ? db.ptr : nullptr,
                                  dy.ptr);
        backend(d).linear_backward_weight(rows, in, out, dx.ptr, dgy.ptr, dgw.ptr,
                                          with_bias ? dgb.ptr : nullptr);
        // One GEMM each, the bias and its gradient inside it (on cuda where cuBLASLt has the
        // epilogue for the case; the sim always does).
        if (d == Device::sim) CHECK(gpu_launch_count(d) - launches == 2);
        // |x|, |w|, |gy| < 1: a dot product of k terms is within k * eps * k of exact.
        check_near(dy.host(), want_y, 2.f * in * in * kEps + 1e-6f, "linear y");
        check_near(dgw.host(), want_gw, 2.f * rows * rows * kEps + 1e-6f, "linear gw");
        if (with_bias) check_near(dgb.host(), want_gb, 2.f * rows * rows * kEps + 1e-6f, "gbias");
      }
    }
  });
}

#if FORGE_SIM_BUILD
TEST_CASE("sim cublasSgemmStridedBatched: column-major with op() and leading dimensions") {
  // A 2x3 (lda 4) times B^T where B is 2x3 stored column-major (ldb 2): C = A B^T, 2x2.
  const float A[] = {1, 2, -1, -1, 3, 4, -1, -1, 5, 6, -1, -1};  // columns (1,2) (3,4) (5,6)
  const float B[] = {1, 0, 0, 1, 1, 1};                          // columns (1,0) (0,1) (1,1)
  float C[4] = {100, 100, 100, 100};
  const float alpha = 1.f, beta = 0.5f;
  namespace sim_blas = forge::gpu_sim;
  CHECK(sim_blas::cublasSgemmStridedBatched(nullptr, sim_blas::CUBLAS_OP_N, sim_blas::CUBLAS_OP_T,
                                            2, 2, 3, &alpha, A, 4, 0, B, 2, 0, &beta, C, 2, 0,
                                            1) == sim_blas::CUBLAS_STATUS_SUCCESS);
  // (A B^T)_{ij} = sum_l A_il B_jl: row 0 of A (1,3,5), row 1 (2,4,6); B rows (1,0,1), (0,1,1).
  CHECK(C[0] == 6 + 50);   // (0,0): 1 + 5
  CHECK(C[1] == 8 + 50);   // (1,0): 2 + 6
  CHECK(C[2] == 8 + 50);   // (0,1): 3 + 5
  CHECK(C[3] == 10 + 50);  // (1,1): 4 + 6
  CHECK(sim_blas::cublasSgemmStridedBatched(nullptr, sim_blas::CUBLAS_OP_N, sim_blas::CUBLAS_OP_N,
                                            2, 2, 3, &alpha, A, 1, 0, B, 3, 0, &beta, C, 2, 0,
                                            1) == sim_blas::CUBLAS_STATUS_INVALID_VALUE);
}
#endif

// ---- elementwise ------------------------------------------------------------------------------

// Whether GELU may run its float path on `d` (engine/cuda/gpu_runtime.h: FORGE_GPU_GELU=float,
// or on cuda a GPU with slow fp64); its tolerance is then the one gelu_math.h states.
bool gelu_may_be_float(Device d) {
  const char* text = std::getenv("FORGE_GPU_GELU");
  const std::string mode = text ? text : "auto";
  return mode == "float" || (d == Device::cuda && mode == "auto");
}

TEST_CASE("gpu fill, unary, unary_backward, axpy") {
  for_each_gpu([](Device d) {
    const bool float_gelu = gelu_may_be_float(d);
    for (int64_t n : {1, 17, 1003, 1 << 20 | 3}) {  // the last needs the grid-stride loop
      INFO("n=" << n);
      DeviceBuffer<float> y(d, size_t(n));
      backend(d).fill(y.ptr, n, 2.5f);
      CHECK(y.host() == std::vector<float>(size_t(n), 2.5f));
    }
    const int64_t n = 1003;
    const auto x = random_values(n, 3, -3.f, 3.f), positive = random_values(n, 4, 0.01f, 5.f),
               gy = random_values(n, 5);
    struct U {
      UnaryOp op;
      const std::vector<float>* input;
    };
    for (U u : {U{UnaryOp::neg, &x}, U{UnaryOp::exp, &x}, U{UnaryOp::log, &positive},
                U{UnaryOp::sqrt, &positive}, U{UnaryOp::square, &x}, U{UnaryOp::relu, &x},
                U{UnaryOp::gelu, &x}, U{UnaryOp::scale, &x}, U{UnaryOp::add_scalar, &x}}) {
      INFO("unary op " << int(u.op));
      std::vector<float> want(n);
      cpu().unary(u.op, u.input->data(), want.data(), n, -1.75f);
      DeviceBuffer<float> dx(d, *u.input), dy(d, size_t(n));
      backend(d).unary(u.op, dx.ptr, dy.ptr, n, -1.75f);
      // One libm call and at most two roundings: 4 ulps covers a GPU's expf/logf/erff; GELU's
      // float path is within 32 ulps of the double one for |x| <= 4 (engine/gelu_math.h).
      const bool float_path = u.op == UnaryOp::gelu && float_gelu;
      check_rel(dy.host(), want, (float_path ? 32 : 4) * kEps, 1e-30f, "unary");
      if (float_path && d == Device::sim) {  // the host's erfcf and expf: the very same floats
        std::vector<float> formula(n);
        for (int64_t i = 0; i < n; ++i) formula[i] = gelu_forward_float(x[i]);
        CHECK(dy.host() == formula);
      }
    }
    for (UnaryOp op : {UnaryOp::relu, UnaryOp::gelu}) {
      std::vector<float> want(n);
      cpu().unary_backward(op, x.data(), gy.data(), want.data(), n);
      DeviceBuffer<float> dx(d, x), dgy(d, gy), dgx(d, size_t(n));
      backend(d).unary_backward(op, dx.ptr, dgy.ptr, dgx.ptr, n);
      // erf, exp and ~6 roundings, each within an ulp of a value below 1.1 in size; the float
      // path's slope within 1e-6 (engine/gelu_math.h).
      check_near(dgx.host(), want, op == UnaryOp::gelu && float_gelu ? 1e-6f : 8 * kEps,
                 "unary_backward");
      if (op == UnaryOp::gelu && float_gelu && d == Device::sim) {
        std::vector<float> formula(n);
        for (int64_t i = 0; i < n; ++i) formula[i] = gy[i] * gelu_slope_float(x[i]);
        CHECK(dgx.host() == formula);
      }
    }
    std::vector<float> want = gy;
    cpu().axpy(0.3f, x.data(), want.data(), n);
    DeviceBuffer<float> dx(d, x), dy(d, gy);
    backend(d).axpy(0.3f, dx.ptr, dy.ptr, n);
    check_near(dy.host(), want, 4 * kEps, "axpy");  // |y| < 2: one FMA or two roundings
  });
}

TEST_CASE("gpu gather, scatter and binary ops over strided and broadcast views") {
  for_each_gpu([](Device d) {
    const auto base = random_values(5000, 6, 0.5f, 2.f);
    // A transposed, offset 3-D view [3, 17, 31] of a [31, 3, 17]-like layout.
    const StridedView permuted = make_view({3, 17, 31}, {17, 1, 51}, 7);
    const int64_t n = 3 * 17 * 31;
    std::vector<float> want(n);
    cpu().gather(base.data(), permuted, want.data());
    DeviceBuffer<float> dbase(d, base), dgot(d, size_t(n));
    backend(d).gather(dbase.ptr, permuted, dgot.ptr);
    CHECK(dgot.host() == want);  // a copy: exact

    const auto src = random_values(n, 7);
    for (bool accumulate : {false, true}) {
      std::vector<float> want_base = base;
      cpu().scatter(src.data(), want_base.data(), permuted, accumulate);
      DeviceBuffer<float> db(d, base), ds(d, src);
      backend(d).scatter(ds.ptr, db.ptr, permuted, accumulate);
      CHECK(db.host() == want_base);  // no overlap: one rounding per element, exact
    }
    // Broadcast backward: [17, 33] accumulated into a [1, 33] row through a zero stride, and
    // [65, 3] into [65, 1]; 17 (or 3) terms per destination: 17 * eps * sum of magnitudes.
    for (auto [rows, cols, view] : {std::tuple{17, 33, make_view({17, 33}, {0, 1}, 2)},
                                    std::tuple{65, 3, make_view({65, 3}, {1, 0}, 0)}}) {
      const auto g = random_values(size_t(rows) * cols, 8);
      std::vector<float> want_base(200, 1.f);
      cpu().scatter(g.data(), want_base.data(), view, true);
      DeviceBuffer<float> db(d, std::vector<float>(200, 1.f)), dg(d, g);
      backend(d).scatter(dg.ptr, db.ptr, view, true);
      check_near(db.host(), want_base, float(std::max(rows, cols)) * kEps * (1.f + rows),
                 "scatter accumulate through a zero stride");
    }

    // Binary ops: a [17, 33] (contiguous), b broadcast along rows ([1, 33], stride 0) or along
    // columns ([17, 1]); also a transposed a. Each output is one rounding: exact.
    const auto a = random_values(17 * 33, 9, 0.5f, 2.f), b = random_values(33 * 17, 10, 0.5f, 2.f);
    const StridedView av = make_view({17, 33}, {33, 1}, 0), at = make_view({17, 33}, {1, 17}, 0);
    for (const StridedView& bv : {make_view({17, 33}, {0, 1}, 0), make_view({17, 33}, {1, 0}, 3),
                                  make_view({17, 33}, {33, 1}, 0)}) {
      for (const StridedView& aview : {av, at}) {
        for (BinaryOp op : {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div}) {
          std::vector<float> want_out(17 * 33);
          cpu().binary(op, a.data(), aview, b.data(), bv, want_out.data());
          DeviceBuffer<float> da(d, a), dbv(d, b), dout(d, size_t(17 * 33));
          backend(d).binary(op, da.ptr, aview, dbv.ptr, bv, dout.ptr);
          INFO("binary op " << int(op));
          CHECK(dout.host() == want_out);
        }
      }
    }

    // Views the launchers coalesce (launch_utils.cuh): a window [4, 1, 5, 6] of a [4, 10, 6]
    // layout, whose inner two dimensions merge and whose extent-1 stride is irrelevant, against a
    // b broadcast over the first two dimensions; and a contiguous 3-D view with an offset.
    const StridedView window = make_view({4, 1, 5, 6}, {60, 999, 6, 1}, 12);
    const StridedView row = make_view({4, 1, 5, 6}, {0, 0, 6, 1}, 1);
    const StridedView flat = make_view({2, 9, 7}, {63, 7, 1}, 5);
    for (const StridedView& view : {window, flat}) {
      std::vector<float> want_copy(size_t(view.shape[0] * view.shape[1] * view.shape[2] *
                                          (view.ndim == 4 ? view.shape[3] : 1)));
      cpu().gather(base.data(), view, want_copy.data());
      DeviceBuffer<float> dcopy(d, want_copy.size());
      backend(d).gather(dbase.ptr, view, dcopy.ptr);
      CHECK(dcopy.host() == want_copy);
      std::vector<float> want_base = base;
      const auto values = random_values(want_copy.size(), 11);
      cpu().scatter(values.data(), want_base.data(), view, true);
      DeviceBuffer<float> db(d, base), dv(d, values);
      backend(d).scatter(dv.ptr, db.ptr, view, true);
      CHECK(db.host() == want_base);
    }
    std::vector<float> want_sum(120);
    cpu().binary(BinaryOp::add, base.data(), window, base.data(), row, want_sum.data());
    DeviceBuffer<float> dsum(d, size_t(120));
    backend(d).binary(BinaryOp::add, dbase.ptr, window, dbase.ptr, row, dsum.ptr);
    CHECK(dsum.host() == want_sum);
  });
}

// Many odd views through the launchers' fast division (ViewIndexer): up to 6 dimensions of odd
// extents (and 1s), each a permutation of a contiguous layout with an offset, against a b that
// broadcasts over a random subset of the dimensions. Each result is one rounding or a copy: exact.
TEST_CASE("gpu gather, scatter and binary ops over random permuted and broadcast views") {
  Generator gen(23);
  const int64_t extents[] = {1, 2, 3, 5, 7, 13, 17};
  for_each_gpu([&](Device d) {
    for (int trial = 0; trial < 40; ++trial) {
      const int ndim = 1 + int(gen.below(6));
      std::vector<int64_t> shape(ndim), order(ndim);
      int64_t n = 1;
      for (int k = 0; k < ndim; ++k) {
        shape[k] = extents[gen.below(7)];
        n *= shape[k];
        order[k] = k;
      }
      for (int k = ndim - 1; k > 0; --k) std::swap(order[k], order[gen.below(uint64_t(k + 1))]);
      // Strides of a contiguous layout whose dimensions are stored in `order`'s sequence.
      std::vector<int64_t> strides(ndim), broadcast(ndim);
      int64_t stride = 1;
      for (int k = ndim - 1; k >= 0; --k) {
        strides[order[k]] = stride;
        stride *= shape[order[k]];
      }
      for (int k = 0; k < ndim; ++k) broadcast[k] = gen.below(2) ? 0 : strides[k];
      const int64_t offset = int64_t(gen.below(9));
      const StridedView view = make_view(shape, strides, offset);
      const StridedView bview = make_view(shape, broadcast, offset);
      INFO("trial " << trial << ": " << ndim << " dimensions, " << n << " elements");
      const auto base = random_values(size_t(n + offset), 30 + trial, 0.5f, 2.f);
      const auto values = random_values(size_t(n), 60 + trial);
      DeviceBuffer<float> dbase(d, base), dvalues(d, values), dout(d, size_t(n));
      std::vector<float> want(n);
      cpu().gather(base.data(), view, want.data());
      backend(d).gather(dbase.ptr, view, dout.ptr);
      CHECK(dout.host() == want);
      std::vector<float> want_base = base;
      cpu().scatter(values.data(), want_base.data(), view, false);
      DeviceBuffer<float> dscattered(d, base);
      backend(d).scatter(dvalues.ptr, dscattered.ptr, view, false);
      CHECK(dscattered.host() == want_base);
      for (BinaryOp op : {BinaryOp::add, BinaryOp::div}) {
        cpu().binary(op, base.data(), view, base.data(), bview, want.data());
        backend(d).binary(op, dbase.ptr, view, dbase.ptr, bview, dout.ptr);
        CHECK(dout.host() == want);
      }
    }
  });
}

#if FORGE_SIM_BUILD
TEST_CASE("coalesce_views: fewest dimensions walking the same elements in the same order") {
  StridedView contiguous = make_view({2, 9, 7}, {63, 7, 1}, 5);
  StridedView* one[] = {&contiguous};
  gpu_sim::coalesce_views(one, 1);
  CHECK(contiguous.ndim == 1);
  CHECK(contiguous.shape[0] == 126);
  CHECK(contiguous.strides[0] == 1);
  CHECK(contiguous.offset == 5);
  // Merged only where both views allow it: a's inner pair merges, b's broadcast keeps dim 0 apart.
  StridedView a = make_view({4, 1, 5, 6}, {60, 999, 6, 1}, 12),
              b = make_view({4, 1, 5, 6}, {0, 0, 6, 1}, 0);
  StridedView* two[] = {&a, &b};
  gpu_sim::coalesce_views(two, 2);
  REQUIRE(a.ndim == 2);
  CHECK(b.ndim == 2);
  CHECK((a.shape[0] == 4 && a.shape[1] == 30 && a.strides[0] == 60 && a.strides[1] == 1));
  CHECK((b.shape[0] == 4 && b.shape[1] == 30 && b.strides[0] == 0 && b.strides[1] == 1));
  // A transpose stays two-dimensional; all extents 1 leave no dimension (one element).
  StridedView transposed = make_view({17, 33}, {1, 17}, 0), single = make_view({1, 1}, {5, 3}, 2);
  StridedView* each[] = {&transposed};
  gpu_sim::coalesce_views(each, 1);
  CHECK(transposed.ndim == 2);
  each[0] = &single;
  gpu_sim::coalesce_views(each, 1);
  CHECK(single.ndim == 0);
}

// FastDivmod (kernels/fast_divmod.cuh) against / and % : every divisor class the proof treats
// apart (1, powers of two, just above and below them, odd primes, the largest allowed 2^(W-1))
// with numerators at 0, around multiples of the divisor and at the largest allowed 2^(W-1) - 1.
template <class Word>
void check_fast_divmod() {
  constexpr int kBits = 8 * sizeof(Word);
  const uint64_t top = uint64_t(1) << (kBits - 1);  // largest divisor; numerators stay below it
  std::vector<uint64_t> divisors = {1, 2, 3, 5, 7, 17, 31, 192, 197, 641, 3072, 65537, 1000003};
  for (int b = 1; b < kBits; ++b) {
    const uint64_t p = uint64_t(1) << b;
    for (uint64_t d : {p - 1, p, p + 1})
      if (d <= top && d <= uint64_t(INT64_MAX)) divisors.push_back(d);  // an int64_t extent
  }
  divisors.push_back(top - 1);
  if (kBits == 64) divisors.push_back(uint64_t(INT64_MAX / 3));
  Generator gen(17);
  int checked = 0;
  for (uint64_t d : divisors) {
    const gpu_sim::FastDivmod<Word> fast{int64_t(d)};
    std::vector<uint64_t> numerators = {0,
                                        1,
                                        d - 1,
                                        d,
                                        d + 1,
                                        2 * d - 1,
                                        top - 1,
                                        top - 2,
                                        top - 1 - (top - 1) % d,
                                        top - 1 - (top - 1) % d - 1};
    for (int k = 0; k < 64; ++k) {
      const uint64_t r = gen.next_u64() % top;
      numerators.push_back(r);
      numerators.push_back(r / d * d);  // a multiple, and the number just below it
      if (r / d * d > 0) numerators.push_back(r / d * d - 1);
    }
    for (uint64_t n : numerators) {
      if (n >= top) continue;
      Word q, r;
      fast.divmod(Word(n), q, r);
      if (q != Word(n / d) || r != Word(n % d))
        FAIL_CHECK(kBits << "-bit " << n << " / " << d << ": got " << uint64_t(q) << " rem "
                         << uint64_t(r));
      ++checked;
    }
  }
  CHECK(checked > 10000);
  CHECK_THROWS_AS(gpu_sim::FastDivmod<Word>(0), std::invalid_argument);
  CHECK_THROWS_AS(gpu_sim::FastDivmod<Word>(-1), std::invalid_argument);
  if (kBits == 32)
    CHECK_THROWS_AS(gpu_sim::FastDivmod<Word>(int64_t(top) + 1), std::invalid_argument);
}

TEST_CASE("FastDivmod: n / d and n % d exactly, 32- and 64-bit, edges of the proof") {
  check_fast_divmod<uint32_t>();
  check_fast_divmod<uint64_t>();
}

// ViewIndexer's offsets against the row-major definition, in 64 bits on indices past 2^31 (no
// tensor that large fits a test, so the indexer runs on the host here) and in 32 bits below.
TEST_CASE("ViewIndexer: offsets of permuted and broadcast views, 32- and 64-bit words") {
  const StridedView huge = make_view({3, 100003, 7919, 5}, {5, 0, 300009 * 5, 1}, 11);
  const StridedView small = make_view({3, 17, 31, 5}, {1, 0, 3 * 5, 3}, 2);
  for (const StridedView& v : {huge, small}) {
    int64_t n = 1;
    for (int d = 0; d < v.ndim; ++d) n *= v.shape[d];
    const auto want = [&](int64_t linear) {
      int64_t off = v.offset;
      for (int d = v.ndim - 1; d >= 0; --d) {
        off += (linear % v.shape[d]) * v.strides[d];
        linear /= v.shape[d];
      }
      return off;
    };
    const gpu_sim::ViewIndexer<uint64_t> wide(v);
    Generator gen(5);
    for (int k = 0; k < 2000; ++k) {
      const int64_t i = k < 2 ? (k == 0 ? 0 : n - 1) : int64_t(gen.below(uint64_t(n)));
      REQUIRE(wide(uint64_t(i)) == want(i));
      if (n < (int64_t(1) << 31))
        REQUIRE(gpu_sim::ViewIndexer<uint32_t>(v)(uint32_t(i)) == want(i));
    }
  }
}
#endif

TEST_CASE("gpu dropout masks are bit-identical to the CPU's") {
  for_each_gpu([](Device d) {
    for (float p : {0.1f, 0.5f}) {
      const int64_t n = 100003;
      const auto x = random_values(n, 11);
      std::vector<float> want(n), want_back(n);
      cpu().dropout_forward(x.data(), want.data(), n, p, 1234);
      cpu().dropout_backward(x.data(), want_back.data(), n, p, 1234);
      DeviceBuffer<float> dx(d, x), dy(d, size_t(n)), dgx(d, size_t(n));
      backend(d).dropout_forward(dx.ptr, dy.ptr, n, p, 1234);
      backend(d).dropout_backward(dx.ptr, dgx.ptr, n, p, 1234);
      CHECK(dy.host() == want);
      CHECK(dgx.host() == want_back);
    }
  });
}

// The fused dropouts round as the unfused kernels do: equal to them (and dropout_add to the CPU)
// bit for bit, one launch each.
TEST_CASE("gpu dropout_add and gelu_dropout equal the unfused ops exactly, in one launch each") {
  for_each_gpu([](Device d) {
    for (float p : {0.1f, 0.5f}) {
      const int64_t n = 100003;
      const auto x = random_values(n, 12, -3.f, 3.f), r = random_values(n, 13),
                 gy = random_values(n, 14);
      std::vector<float> want_add(n);
      cpu().dropout_add_forward(r.data(), x.data(), want_add.data(), n, p, 99);
      DeviceBuffer<float> dx(d, x), dr(d, r), dgy(d, gy), dy(d, size_t(n)), dgx(d, size_t(n));
      DeviceBuffer<float> unfused(d, size_t(n)), unfused_g(d, size_t(n));
      Backend& be = backend(d);
      uint64_t launches = gpu_launch_count(d);
      be.dropout_add_forward(dr.ptr, dx.ptr, dy.ptr, n, p, 99);
      CHECK(gpu_launch_count(d) - launches == 1);
      CHECK(dy.host() == want_add);
      // dropout(gelu(x)) against gelu then dropout on the same device (the GELU path is the
      // device's: double, or float where FORGE_GPU_GELU says so).
      be.unary(UnaryOp::gelu, dx.ptr, unfused.ptr, n, 0.f);
      be.dropout_forward(unfused.ptr, unfused.ptr, n, p, 99);
      launches = gpu_launch_count(d);
      be.gelu_dropout_forward(dx.ptr, dy.ptr, n, p, 99);
      CHECK(gpu_launch_count(d) - launches == 1);
      CHECK(dy.host() == unfused.host());
      be.dropout_backward(dgy.ptr, unfused_g.ptr, n, p, 99);
      be.unary_backward(UnaryOp::gelu, dx.ptr, unfused_g.ptr, unfused_g.ptr, n);
      launches = gpu_launch_count(d);
      be.gelu_dropout_backward(dx.ptr, dgy.ptr, dgx.ptr, n, p, 99);
      CHECK(gpu_launch_count(d) - launches == 1);
      CHECK(dgx.host() == unfused_g.host());
    }
  });
}

// ---- reductions -------------------------------------------------------------------------------

TEST_CASE("gpu reduce_sum over kept and reduced dimensions") {
  struct Case {
    std::vector<int64_t> in, out;
  };
  const std::vector<Case> cases = {
      {{101, 257}, {1, 257}},        // bias gradient: serial path (last dim kept)
      {{101, 257}, {101, 1}},        // row sums: block path
      {{3, 31, 33}, {3, 1, 33}},     // middle dimension
      {{5, 7, 9, 3}, {1, 7, 1, 3}},  // interleaved kept / reduced
      {{17, 65}, {1, 1}},            // everything
      {{65, 3, 17}, {1, 3, 1}},      // batch-norm-like channel sums
      {{2, 2000, 3}, {2, 1, 3}},     // long reductions, few outputs
      {{1031, 1}, {1031, 1}},        // nothing reduced
  };
  for_each_gpu([&](Device d) {
    for (const Case& c : cases) {
      int64_t n = 1, out_n = 1, red_n = 1;
      for (size_t i = 0; i < c.in.size(); ++i) {
        n *= c.in[i];
        out_n *= c.out[i];
      }
      red_n = n / out_n;
      const auto x = random_values(n, 12);
      std::vector<float> want(out_n);
      cpu().reduce_sum(x.data(), c.in.data(), c.out.data(), int(c.in.size()), want.data());
      DeviceBuffer<float> dx(d, x), dout(d, size_t(out_n));
      backend(d).reduce_sum(dx.ptr, c.in.data(), c.out.data(), int(c.in.size()), dout.ptr);
      INFO("reduce " << n << " elements to " << out_n);
      // red_n terms of magnitude < 1 per output: within red_n * eps * red_n of the double sum.
      check_near(dout.host(), want, float(red_n) * float(red_n) * kEps + 1e-6f, "reduce_sum");
    }
  });
}

TEST_CASE("gpu clipping over a list of tensors in two launches, the norm left on the device") {
  const std::vector<std::vector<int64_t>> lists = {
      {1}, {1000}, {300007}, {17, 0, 1000, 1, 300007, 33}};  // an empty tensor among others
  for_each_gpu([&](Device d) {
    for (const auto& sizes : lists)
      for (const bool clipped : {false, true}) {
        INFO("tensors of " << sizes.size() << ", the first " << sizes[0] << " floats, "
                           << (clipped ? "clipped" : "below the threshold"));
        std::vector<std::vector<float>> host;
        std::vector<std::unique_ptr<DeviceBuffer<float>>> device;
        std::vector<float*> cpu_ptrs, gpu_ptrs;
        int64_t total = 0;
        for (size_t k = 0; k < sizes.size(); ++k) {
          host.push_back(random_values(size_t(sizes[k]), 13 + k));
          device.push_back(std::make_unique<DeviceBuffer<float>>(d, host.back()));
          cpu_ptrs.push_back(host.back().data());
          gpu_ptrs.push_back(device.back()->ptr);
          total += sizes[k];
        }
        const int count = int(sizes.size());
        float want = 0.f;
        cpu().clip_by_global_norm(cpu_ptrs.data(), sizes.data(), count, 1e30f, &want);
        // Clipped: a threshold of 0.37 of the norm, so every value is scaled.
        const float max_norm = clipped ? 0.37f * want : 2.f * want;
        if (clipped)
          cpu().clip_by_global_norm(cpu_ptrs.data(), sizes.data(), count, max_norm, &want);
        DeviceBuffer<float> norm(d, 1);
        const uint64_t launches = gpu_launch_count(d);
        const GpuSyncCount syncs = gpu_sync_count(d);
        backend(d).clip_by_global_norm(gpu_ptrs.data(), sizes.data(), count, max_norm, norm.ptr);
        CHECK(gpu_launch_count(d) - launches == 2);
        CHECK(gpu_sync_count(d).host_waits == syncs.host_waits);  // nothing read back
        // total / (1024 * 256) serial float terms a thread, then trees: within total * eps * S.
        const double got = norm.host()[0];
        CHECK(std::fabs(got * got - double(want) * want) <=
              double(total) * kEps * double(want) * want + 1e-6);
        // Clipped by the GPU's own norm, which is the CPU's to the tolerance above; the values
        // are below 1 in magnitude. Not clipped: untouched, bit for bit.
        for (size_t k = 0; k < sizes.size(); ++k)
          check_near(device[k]->host(), host[k], clipped ? 4 * float(total) * kEps : 0.f,
                     "clipped values");
      }
  });
}

TEST_CASE("gpu clipping leaves gradients with a NaN untouched and reports the NaN norm") {
  for_each_gpu([&](Device d) {
    std::vector<float> values = random_values(5000, 3);
    values[4321] = std::numeric_limits<float>::quiet_NaN();
    DeviceBuffer<float> x(d, values), norm(d, 1);
    float* ptrs[] = {x.ptr};
    const int64_t sizes[] = {5000};
    backend(d).clip_by_global_norm(ptrs, sizes, 1, 1e-3f, norm.ptr);
    CHECK(std::isnan(norm.host()[0]));
    const std::vector<float> after = x.host();
    for (size_t i = 0; i < values.size(); ++i)
      if (i != 4321) REQUIRE(after[i] == values[i]);
  });
}

TEST_CASE("gpu step metrics: loss sum, first-maximum accuracy and the first non-finite step") {
  const int rows = 37, classes = 5;
  for_each_gpu([&](Device d) {
    std::vector<double> want{0, 0, 0, -1};
    DeviceBuffer<double> sums(d, want);
    for (int step = 0; step < 12; ++step) {
      CAPTURE(step);
      // Logits rounded to quarters, so rows have ties (the first maximum wins) and labels hit.
      std::vector<float> logits = random_values(size_t(rows) * classes, 100 + step, -1.f, 1.f);
      for (float& z : logits) z = std::round(z * 4.f) / 4.f;
      std::vector<int32_t> labels(rows);
      for (int r = 0; r < rows; ++r) labels[r] = (r * 7 + step) % classes;
      const float loss = step == 5   ? std::numeric_limits<float>::quiet_NaN()
                         : step == 8 ? std::numeric_limits<float>::infinity()
                                     : 0.25f * float(step + 1);
      cpu().accumulate_step_metrics(rows, classes, logits.data(), labels.data(), &loss, step,
                                    want.data());
      DeviceBuffer<float> dlogits(d, logits), dloss(d, std::vector<float>{loss});
      DeviceBuffer<int32_t> dlabels(d, labels);
      const GpuSyncCount syncs = gpu_sync_count(d);
      backend(d).accumulate_step_metrics(rows, classes, dlogits.ptr, dlabels.ptr, dloss.ptr, step,
                                         sums.ptr);
      CHECK(gpu_sync_count(d).host_waits == syncs.host_waits);
      const std::vector<double> got = sums.host();
      CHECK(got[1] == want[1]);  // the same rows counted correct
      CHECK(got[3] == (step < 5 ? -1.0 : 5.0));
      CHECK(want[3] == (step < 5 ? -1.0 : 5.0));
      if (step < 5) {
        CHECK(got[0] == want[0]);
        CHECK(got[2] == want[2]);
      } else {
        CHECK_FALSE(std::isfinite(got[0]));  // a NaN or inf stays in the sum
      }
    }
  });
}

// ---- optimizers -------------------------------------------------------------------------------

TEST_CASE("gpu adam over a list of tensors in one launch, each at its own step") {
  // Three tensors, one empty, whose steps differ (a parameter frozen for a while lags behind).
  const std::vector<int64_t> sizes{1003, 0, 257};
  const std::vector<int> lag{0, 2, 5};
  for_each_gpu([&](Device d) {
    for (bool decoupled : {false, true}) {
      INFO("decoupled " << decoupled);
      std::vector<std::vector<float>> p, g, m, v;
      std::vector<std::unique_ptr<DeviceBuffer<float>>> dp, dg, dm, dv;
      for (size_t k = 0; k < sizes.size(); ++k) {
        p.push_back(random_values(size_t(sizes[k]), 14 + k));
        g.push_back(random_values(size_t(sizes[k]), 24 + k));
        m.emplace_back(size_t(sizes[k]), 0.f);
        v.emplace_back(size_t(sizes[k]), 0.f);
        dp.push_back(std::make_unique<DeviceBuffer<float>>(d, p[k]));
        dg.push_back(std::make_unique<DeviceBuffer<float>>(d, g[k]));
        dm.push_back(std::make_unique<DeviceBuffer<float>>(d, m[k]));
        dv.push_back(std::make_unique<DeviceBuffer<float>>(d, v[k]));
      }
      for (int step = 1; step <= 3; ++step) {
        std::vector<AdamTensor> on_cpu, on_gpu;
        for (size_t k = 0; k < sizes.size(); ++k) {
          on_cpu.push_back(
              {p[k].data(), g[k].data(), m[k].data(), v[k].data(), sizes[k], step + lag[k]});
          on_gpu.push_back(
              {dp[k]->ptr, dg[k]->ptr, dm[k]->ptr, dv[k]->ptr, sizes[k], step + lag[k]});
        }
        cpu().adam_step(on_cpu.data(), int(on_cpu.size()), 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f,
                        decoupled);
        const uint64_t launches = gpu_launch_count(d);
        backend(d).adam_step(on_gpu.data(), int(on_gpu.size()), 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f,
                             decoupled);
        CHECK(gpu_launch_count(d) - launches == 1);
      }
      // A dozen roundings per step (FMA contraction may differ on a GPU) on values below ~2: a
      // few ulps per step, three steps.
      for (size_t k = 0; k < sizes.size(); ++k) {
        INFO("tensor " << k);
        check_near(dp[k]->host(), p[k], 64 * kEps, "parameters");
        check_near(dm[k]->host(), m[k], 64 * kEps, "first moment");
        check_rel(dv[k]->host(), v[k], 64 * kEps, 1e-12f, "second moment");
      }
    }
  });
}

TEST_CASE("gpu ema_update: every tensor in one launch, bit for bit as scale then axpy") {
  // The update was unary(scale, decay) and axpy(1 - decay) per tensor; the one-launch kernel
  // must round each element as those two did (its product alone, __fmul_rn), on every device.
  const std::vector<int64_t> sizes{1003, 0, 257, 1};
  const float decay = 0.9f;
  for_each_gpu([&](Device d) {
    std::vector<std::unique_ptr<DeviceBuffer<float>>> fused, two_calls, live;
    std::vector<EmaTensor> table;
    for (size_t k = 0; k < sizes.size(); ++k) {
      const auto average = random_values(size_t(sizes[k]), 31 + k);
      fused.push_back(std::make_unique<DeviceBuffer<float>>(d, average));
      two_calls.push_back(std::make_unique<DeviceBuffer<float>>(d, average));
      live.push_back(
          std::make_unique<DeviceBuffer<float>>(d, random_values(size_t(sizes[k]), 41 + k)));
      table.push_back({fused[k]->ptr, live[k]->ptr, sizes[k]});
    }
    Backend& be = backend(d);
    for (int step = 0; step < 3; ++step) {
      const uint64_t launches = gpu_launch_count(d);
      be.ema_update(table.data(), int(table.size()), decay);
      CHECK(gpu_launch_count(d) - launches == 1);
      for (size_t k = 0; k < sizes.size(); ++k) {
        be.unary(UnaryOp::scale, two_calls[k]->ptr, two_calls[k]->ptr, sizes[k], decay);
        be.axpy(1.f - decay, live[k]->ptr, two_calls[k]->ptr, sizes[k]);
      }
    }
    for (size_t k = 0; k < sizes.size(); ++k) {
      INFO("tensor " << k);
      CHECK(fused[k]->host() == two_calls[k]->host());
    }
  });
}

TEST_CASE("gpu sgd (plain and Nesterov) over three steps") {
  for_each_gpu([](Device d) {
    const int64_t n = 1003;
    const auto p0 = random_values(n, 14), g = random_values(n, 15);
    for (bool nesterov : {false, true}) {
      std::vector<float> p = p0, buf(n, 0.f);
      DeviceBuffer<float> dp(d, p0), dg(d, g), dbuf(d, buf);
      for (int step = 1; step <= 3; ++step) {
        cpu().sgd_step(n, p.data(), g.data(), buf.data(), 0.1f, 0.9f, 0.01f, nesterov);
        backend(d).sgd_step(n, dp.ptr, dg.ptr, dbuf.ptr, 0.1f, 0.9f, 0.01f, nesterov);
      }
      INFO("nesterov " << nesterov);
      // A few roundings per step (FMA contraction may differ on a GPU), three steps.
      check_near(dp.host(), p, 64 * kEps, "parameters");
      check_near(dbuf.host(), buf, 64 * kEps, "momentum");
    }
  });
}

// ---- loss -------------------------------------------------------------------------------------

TEST_CASE("gpu cross-entropy forward and backward, with and without label smoothing") {
  for_each_gpu([](Device d) {
    for (int rows : {1, 17, 65}) {
      for (int classes : {3, 33, 257}) {
        for (float smoothing : {0.f, 0.1f}) {
          const auto z = random_values(size_t(rows) * classes, 16, -4.f, 4.f);
          std::vector<int32_t> labels(rows);
          for (int r = 0; r < rows; ++r) labels[r] = (r * 7 + 3) % classes;
          const auto gloss = random_values(rows, 17);
          std::vector<float> loss(rows), lse(rows), gz(z.size());
          cpu().cross_entropy_forward(rows, classes, z.data(), labels.data(), smoothing,
                                      loss.data(), lse.data());
          cpu().cross_entropy_backward(rows, classes, z.data(), labels.data(), smoothing,
                                       lse.data(), gloss.data(), gz.data());
          DeviceBuffer<float> dz(d, z), dloss(d, size_t(rows)), dlse(d, size_t(rows)),
              dgloss(d, gloss), dgz(d, z.size());
          DeviceBuffer<int32_t> dlabels(d, labels);
          backend(d).cross_entropy_forward(rows, classes, dz.ptr, dlabels.ptr, smoothing, dloss.ptr,
                                           dlse.ptr);
          backend(d).cross_entropy_backward(rows, classes, dz.ptr, dlabels.ptr, smoothing, dlse.ptr,
                                            dgloss.ptr, dgz.ptr);
          INFO("rows=" << rows << " classes=" << classes << " smoothing=" << smoothing);
          // Sums of `classes` terms: exp terms <= 1, logits |z| <= 4: classes * eps * 4 classes.
          const float tol = 4.f * classes * classes * kEps + 8 * kEps;
          check_near(dlse.host(), lse, tol, "lse");
          check_near(dloss.host(), loss, tol, "loss");
          // From the backend's own lse: one exp of an argument off by tol, times |gloss| < 1.
          check_near(dgz.host(), gz, 2 * tol, "glogits");
        }
      }
    }
  });
}

// ---- normalisation ----------------------------------------------------------------------------

TEST_CASE("gpu layer norm and softmax, forward and backward") {
  for_each_gpu([](Device d) {
    for (int rows : {1, 17, 65, 101}) {
      for (int dim : {3, 31, 33, 257}) {
        INFO("rows=" << rows << " d=" << dim);
        const size_t n = size_t(rows) * dim;
        const auto x = random_values(n, 18, -2.f, 3.f), gy = random_values(n, 19),
                   gamma = random_values(dim, 20, 0.5f, 1.5f), beta = random_values(dim, 21);
        std::vector<float> y(n), mean(rows), rstd(rows), gx(n), ggamma(dim), gbeta(dim);
        cpu().layernorm_forward(rows, dim, x.data(), gamma.data(), beta.data(), 1e-5f, y.data(),
                                mean.data(), rstd.data());
        cpu().layernorm_backward(rows, dim, x.data(), gy.data(), gamma.data(), mean.data(),
                                 rstd.data(), gx.data(), ggamma.data(), gbeta.data(), false);
        DeviceBuffer<float> dx(d, x), dgy(d, gy), dgamma(d, gamma), dbeta(d, beta), dy(d, n),
            dmean(d, size_t(rows)), drstd(d, size_t(rows)), dgx(d, n), dgg(d, size_t(dim)),
            dgb(d, size_t(dim));
        Backend& be = backend(d);
        be.layernorm_forward(rows, dim, dx.ptr, dgamma.ptr, dbeta.ptr, 1e-5f, dy.ptr, dmean.ptr,
                             drstd.ptr);
        const uint64_t launches = gpu_launch_count(d);
        be.layernorm_backward(rows, dim, dx.ptr, dgy.ptr, dgamma.ptr, dmean.ptr, drstd.ptr, dgx.ptr,
                              dgg.ptr, dgb.ptr, false);
        CHECK(gpu_launch_count(d) - launches == 1);  // gx and the parameter sums in one launch
        // Row statistics are sums of d terms (|x| <= 3, xhat up to sqrt(d)): d * eps relative,
        // magnified by |xhat| <= sqrt(d) in y and gx; parameter gradients sum `rows` terms of
        // |gy xhat| <= sqrt(d).
        const float row_tol = 16.f * dim * std::sqrt(float(dim)) * kEps;
        check_near(dmean.host(), mean, 3.f * dim * kEps, "mean");
        check_rel(drstd.host(), rstd, 2.f * dim * kEps, 0.f, "rstd");
        check_near(dy.host(), y, row_tol, "layernorm y");
        check_near(dgx.host(), gx, 4.f * row_tol, "layernorm gx");
        check_near(dgg.host(), ggamma, rows * row_tol, "ggamma");
        check_near(dgb.host(), gbeta, rows * kEps * rows + 1e-6f, "gbeta");
        // accumulate_gx adds the same gradient into what gx holds (here: gx itself, so 2 gx).
        be.layernorm_backward(rows, dim, dx.ptr, dgy.ptr, dgamma.ptr, dmean.ptr, drstd.ptr, dgx.ptr,
                              dgg.ptr, dgb.ptr, true);
        std::vector<float> twice = gx;
        for (float& v : twice) v *= 2.f;
        check_near(dgx.host(), twice, 8.f * row_tol, "layernorm gx accumulated");

        std::vector<float> sy(n), sgx(n);
        cpu().softmax_forward(rows, dim, x.data(), sy.data());
        cpu().softmax_backward(rows, dim, sy.data(), gy.data(), sgx.data());
        DeviceBuffer<float> dsy(d, n), dsgx(d, n);
        be.softmax_forward(rows, dim, dx.ptr, dsy.ptr);
        be.softmax_backward(rows, dim, dsy.ptr, dgy.ptr, dsgx.ptr);
        // y <= 1, the normaliser a sum of d terms: d * eps; gx adds a dot of d terms.
        check_near(dsy.host(), sy, 2.f * dim * kEps, "softmax y");
        check_near(dsgx.host(), sgx, 4.f * dim * kEps, "softmax gx");
      }
    }
  });
}

TEST_CASE(
    "gpu degenerate shapes: layer norm with d = 0 or no rows, conv with no images or pixels") {
  for_each_gpu([](Device d) {
    Backend& be = backend(d);
    {
      INFO("layer norm, 3 rows of d = 0: nothing to write, and no empty grid");
      DeviceBuffer<float> none(d, size_t(0)), stats(d, size_t(3));
      CHECK_NOTHROW(be.layernorm_forward(3, 0, none.ptr, none.ptr, none.ptr, 1e-5f, none.ptr,
                                         stats.ptr, stats.ptr));
      CHECK_NOTHROW(be.layernorm_backward(3, 0, none.ptr, none.ptr, none.ptr, stats.ptr, stats.ptr,
                                          none.ptr, none.ptr, none.ptr, false));
    }
    {
      INFO("layer norm, no rows, d = 5: the parameter gradients are sums over nothing");
      DeviceBuffer<float> none(d, size_t(0)), gamma(d, std::vector<float>(5, 1.f)),
          ggamma(d, size_t(5)), gbeta(d, size_t(5));
      be.layernorm_backward(0, 5, none.ptr, none.ptr, gamma.ptr, none.ptr, none.ptr, none.ptr,
                            ggamma.ptr, gbeta.ptr, false);
      CHECK(ggamma.host() == std::vector<float>(5, 0.f));
      CHECK(gbeta.host() == std::vector<float>(5, 0.f));
    }
    {
      INFO("conv, n = 0: no output; the weight and bias gradients are zero");
      const Conv2dDesc desc{0, 2, 5, 5, 3, 3, 3, 1, 1, 5, 5};
      DeviceBuffer<float> none(d, size_t(0)), w(d, random_values(2 * 9 * 3, 30)),
          bias(d, random_values(3, 31)), gw(d, size_t(2 * 9 * 3)), gbias(d, size_t(3));
      CHECK_NOTHROW(be.conv2d_forward(desc, none.ptr, w.ptr, bias.ptr, none.ptr));
      CHECK_NOTHROW(be.conv2d_backward_data(desc, none.ptr, w.ptr, none.ptr));
      be.conv2d_backward_weight(desc, none.ptr, none.ptr, gw.ptr, gbias.ptr);
      CHECK(gw.host() == std::vector<float>(2 * 9 * 3, 0.f));
      CHECK(gbias.host() == std::vector<float>(3, 0.f));
    }
    {
      INFO("conv over a 0 x 0 image (no output pixels: oh * ow = 0): gx, gW and gbias are zero");
      const Conv2dDesc desc{2, 3, 0, 0, 4, 1, 1, 1, 0, 0, 0};
      DeviceBuffer<float> none(d, size_t(0)), w(d, random_values(4 * 3, 32)),
          bias(d, random_values(4, 33)), gw(d, size_t(4 * 3)), gbias(d, size_t(4));
      CHECK_NOTHROW(be.conv2d_forward(desc, none.ptr, w.ptr, bias.ptr, none.ptr));
      CHECK_NOTHROW(be.conv2d_backward_data(desc, none.ptr, w.ptr, none.ptr));
      be.conv2d_backward_weight(desc, none.ptr, none.ptr, gw.ptr, gbias.ptr);
      CHECK(gw.host() == std::vector<float>(4 * 3, 0.f));
      CHECK(gbias.host() == std::vector<float>(4, 0.f));
    }
  });
}

TEST_CASE("gpu batch norm: training forward with running statistics, eval, backward") {
  for_each_gpu([](Device d) {
    for (int n : {1, 3}) {
      for (int c : {1, 5, 7}) {
        for (int hw : {1, 17, 33}) {
          if (n * hw == 1) continue;  // one value per channel: variance 0, nothing to compare
          INFO("n=" << n << " c=" << c << " hw=" << hw);
          const size_t size = size_t(n) * c * hw;
          const int64_t count = int64_t(n) * hw;
          const auto x = random_values(size, 22, -1.f, 3.f), gy = random_values(size, 23),
                     gamma = random_values(c, 24, 0.5f, 1.5f), beta = random_values(c, 25);
          std::vector<float> y(size), mean(c), invstd(c), rm(c, 0.1f), rv(c, 0.9f), gx(size), gg(c),
              gb(c), ye(size);
          cpu().batchnorm_forward_train(n, c, hw, x.data(), gamma.data(), beta.data(), 1e-5f, 0.1f,
                                        y.data(), mean.data(), invstd.data(), rm.data(), rv.data());
          cpu().batchnorm_backward(n, c, hw, x.data(), gy.data(), gamma.data(), mean.data(),
                                   invstd.data(), gx.data(), gg.data(), gb.data());
          cpu().batchnorm_forward_eval(n, c, hw, x.data(), gamma.data(), beta.data(), rm.data(),
                                       rv.data(), 1e-5f, ye.data());
          Backend& be = backend(d);
          DeviceBuffer<float> dx(d, x), dgy(d, gy), dgamma(d, gamma), dbeta(d, beta), dy(d, size),
              dmean(d, size_t(c)), dinv(d, size_t(c)), drm(d, std::vector<float>(c, 0.1f)),
              drv(d, std::vector<float>(c, 0.9f)), dgx(d, size), dgg(d, size_t(c)),
              dgb(d, size_t(c)), dye(d, size);
          be.batchnorm_forward_train(n, c, hw, dx.ptr, dgamma.ptr, dbeta.ptr, 1e-5f, 0.1f, dy.ptr,
                                     dmean.ptr, dinv.ptr, drm.ptr, drv.ptr);
          be.batchnorm_backward(n, c, hw, dx.ptr, dgy.ptr, dgamma.ptr, dmean.ptr, dinv.ptr, dgx.ptr,
                                dgg.ptr, dgb.ptr);
          be.batchnorm_forward_eval(n, c, hw, dx.ptr, dgamma.ptr, dbeta.ptr, drm.ptr, drv.ptr,
                                    1e-5f, dye.ptr);
          // Channel sums of N = n hw terms (|x| <= 3): N * eps relative; invstd may be large
          // when N is small, so relative checks for it and the normalised outputs scaled by it.
          const float tol = 8.f * count * kEps;
          const float scale = 1.f + invstd[0] * 4.f;
          check_near(dmean.host(), mean, 3.f * tol, "save_mean");
          check_rel(dinv.host(), invstd, tol, 0.f, "save_invstd");
          check_near(drm.host(), rm, 3.f * tol, "running_mean");
          check_rel(drv.host(), rv, tol, 1e-6f, "running_var");
          check_near(dy.host(), y, scale * tol * 4.f, "y (train)");
          check_near(dye.host(), ye, scale * tol * 4.f, "y (eval)");
          check_near(dgb.host(), gb, tol, "gbeta");
          check_near(dgg.host(), gg, scale * tol * 4.f, "ggamma");
          check_near(dgx.host(), gx, scale * scale * tol * 4.f, "gx");
        }
      }
    }
  });
}

// ---- reductions over many blocks (kernels/slab_reduce.cuh) -------------------------------------
// Shapes that cut the rows (or a channel's values) into many slabs with a short last one, beside
// ones that stay in one slab; each result against the CPU, and bitwise the same on a second run
// and, on sim, in the other lane order (the partials are added in a fixed order, whichever block
// finishes last).

namespace {

// Runs `compute` (host copies of a device result) again, and on sim in both lane orders, and
// requires the bits of the first run every time.
void check_reproducible(Device d, const std::function<std::vector<std::vector<float>>()>& compute) {
  const auto first = compute();
  CHECK(compute() == first);
#if FORGE_SIM_BUILD
  if (d == Device::sim) {
    const forge::sim::Order saved = forge::sim::order();
    for (forge::sim::Order order : {forge::sim::Order::forward, forge::sim::Order::reverse}) {
      forge::sim::set_order(order);
      CHECK_MESSAGE(compute() == first, "lane order " << int(order));
    }
    forge::sim::set_order(saved);
  }
#endif
}

}  // namespace

#if FORGE_SIM_BUILD
TEST_CASE("slab splits: about 1,056 blocks, a minimum slab, no empty slab") {
  using gpu_sim::column_slabs;
  CHECK(column_slabs(63, 192).slabs == 1);    // under one minimum slab (64 rows)
  const auto tall = column_slabs(6304, 192);  // a ViT-Ti batch of 32: 6 column tiles
  CHECK(tall.col_blocks == 6);
  CHECK(tall.slabs == 99);  // min(ceil(1056 / 6), ceil(6304 / 64)) slabs of 64 rows
  CHECK(tall.slab_rows * (tall.slabs - 1) < 6304);
  CHECK(tall.slab_rows * tall.slabs >= 6304);
  const auto wide = column_slabs(6304, 3072);
  CHECK(wide.blocks() >= 1056);
  CHECK(wide.blocks() < 1056 + 96);
  const auto channels = gpu_sim::channel_slabs(32, 64, 56 * 56);
  CHECK(channels.slabs == 17);
  CHECK(channels.slab_len * channels.slabs >= channels.count);
  CHECK(channels.step_q * channels.hw + channels.step_r == 256);
}
#endif

TEST_CASE("gpu column sums over many blocks: reduce_sum [rows, cols] -> [cols], every tail") {
  // (rows, cols): one slab; 64-row slabs with a 1-row tail; d = 1; d = 192; 3,072 columns; and
  // a [b, t, d] -> [1, 1, d] broadcast backward, whose two reduced dimensions merge.
  const std::vector<std::vector<int64_t>> shapes = {{63, 5},     {64 * 37 + 1, 33}, {9001, 1},
                                                    {6304, 192}, {1537, 3072},      {7, 197, 31}};
  for_each_gpu([&](Device d) {
    for (const auto& in : shapes) {
      std::vector<int64_t> out(in.size(), 1);
      out.back() = in.back();
      int64_t n = 1;
      for (int64_t e : in) n *= e;
      const int64_t rows = n / in.back();
      INFO("sum " << rows << " rows of " << in.back() << " columns");
      const auto x = random_values(size_t(n), 70);
      std::vector<float> want(size_t(in.back()));
      cpu().reduce_sum(x.data(), in.data(), out.data(), int(in.size()), want.data());
      DeviceBuffer<float> dx(d, x), dout(d, want.size());
      const uint64_t launches = gpu_launch_count(d);
      backend(d).reduce_sum(dx.ptr, in.data(), out.data(), int(in.size()), dout.ptr);
      CHECK(gpu_launch_count(d) - launches == 1);  // the partials' sums in the same launch
      // rows terms of magnitude < 1: within rows * eps * rows of the double sum.
      check_near(dout.host(), want, float(rows) * float(rows) * kEps + 1e-6f, "column sums");
      check_reproducible(d, [&] {
        backend(d).reduce_sum(dx.ptr, in.data(), out.data(), int(in.size()), dout.ptr);
        return std::vector<std::vector<float>>{dout.host()};
      });
    }
  });
}

TEST_CASE("gpu layer-norm parameter gradients over many blocks: d = 1, 192, 3,072, odd rows") {
  for_each_gpu([](Device d) {
    for (auto [rows, dim] : {std::pair{6304, 192}, std::pair{64 * 5 + 3, 3072}, std::pair{4097, 1},
                             std::pair{1000, 33}}) {
      INFO("rows=" << rows << " d=" << dim);
      const size_t n = size_t(rows) * dim;
      const auto x = random_values(n, 71, -2.f, 3.f), gy = random_values(n, 72),
                 gamma = random_values(dim, 73, 0.5f, 1.5f), beta = random_values(dim, 74);
      std::vector<float> y(n), mean(rows), rstd(rows), gx(n), ggamma(dim), gbeta(dim);
      cpu().layernorm_forward(rows, dim, x.data(), gamma.data(), beta.data(), 1e-5f, y.data(),
                              mean.data(), rstd.data());
      cpu().layernorm_backward(rows, dim, x.data(), gy.data(), gamma.data(), mean.data(),
                               rstd.data(), gx.data(), ggamma.data(), gbeta.data(), false);
      // The device's backward from the CPU's statistics, so only the backward is compared.
      DeviceBuffer<float> dx(d, x), dgy(d, gy), dgamma(d, gamma), dmean(d, mean), drstd(d, rstd),
          dgx(d, n), dgg(d, size_t(dim)), dgb(d, size_t(dim));
      Backend& be = backend(d);
      const uint64_t launches = gpu_launch_count(d);
      be.layernorm_backward(rows, dim, dx.ptr, dgy.ptr, dgamma.ptr, dmean.ptr, drstd.ptr, dgx.ptr,
                            dgg.ptr, dgb.ptr, false);
      CHECK(gpu_launch_count(d) - launches == 1);  // gx, the slabs and their sums: one launch
      // rows terms of |gy xhat| <= sqrt(d) (d = 1: xhat = 0) and of |gy| < 1.
      const float xhat_max = std::max(1.f, std::sqrt(float(dim)));
      check_near(dgg.host(), ggamma, rows * rows * kEps * xhat_max + 1e-5f, "ggamma");
      check_near(dgb.host(), gbeta, rows * rows * kEps + 1e-6f, "gbeta");
      check_near(dgx.host(), gx, 64.f * dim * xhat_max * kEps + 1e-5f, "gx");
      check_reproducible(d, [&] {
        be.layernorm_backward(rows, dim, dx.ptr, dgy.ptr, dgamma.ptr, dmean.ptr, drstd.ptr, dgx.ptr,
                              dgg.ptr, dgb.ptr, false);
        return std::vector<std::vector<float>>{dgg.host(), dgb.host(), dgx.host()};
      });
    }
  });
}

TEST_CASE("gpu batch norm over many blocks a channel: statistics, backward, n hw large") {
  for_each_gpu([](Device d) {
    // (n, c, hw, slabs a channel): 17 slabs and a short last one; hw = 1 (one value a sample);
    // one channel of 74 slabs; a prime hw with many channels (3 slabs each); one slab (1,600
    // values), where the backward's one launch also writes gx.
    for (auto [n, c, hw, slabs] :
         {std::tuple{8, 3, 4099, 17}, std::tuple{40000, 2, 1, 20}, std::tuple{3, 1, 50021, 74},
          std::tuple{2, 64, 3001, 3}, std::tuple{16, 3, 100, 1}}) {
      REQUIRE(gpu_sim::channel_slabs(n, c, hw).slabs == slabs);
      INFO("n=" << n << " c=" << c << " hw=" << hw);
      const size_t size = size_t(n) * c * hw;
      const int64_t count = int64_t(n) * hw;
      const auto x = random_values(size, 75, -1.f, 3.f), gy = random_values(size, 76),
                 gamma = random_values(c, 77, 0.5f, 1.5f), beta = random_values(c, 78);
      std::vector<float> y(size), mean(c), invstd(c), rm(c, 0.1f), rv(c, 0.9f), gx(size), gg(c),
          gb(c);
      cpu().batchnorm_forward_train(n, c, hw, x.data(), gamma.data(), beta.data(), 1e-5f, 0.1f,
                                    y.data(), mean.data(), invstd.data(), rm.data(), rv.data());
      cpu().batchnorm_backward(n, c, hw, x.data(), gy.data(), gamma.data(), mean.data(),
                               invstd.data(), gx.data(), gg.data(), gb.data());
      Backend& be = backend(d);
      DeviceBuffer<float> dx(d, x), dgy(d, gy), dgamma(d, gamma), dbeta(d, beta), dy(d, size),
          dmean(d, size_t(c)), dinv(d, size_t(c)), drm(d, std::vector<float>(c, 0.1f)),
          drv(d, std::vector<float>(c, 0.9f)), dgx(d, size), dgg(d, size_t(c)), dgb(d, size_t(c));
      uint64_t launches = gpu_launch_count(d);
      be.batchnorm_forward_train(n, c, hw, dx.ptr, dgamma.ptr, dbeta.ptr, 1e-5f, 0.1f, dy.ptr,
                                 dmean.ptr, dinv.ptr, drm.ptr, drv.ptr);
      CHECK(gpu_launch_count(d) - launches == 2);  // statistics (all slabs), the affine map
      launches = gpu_launch_count(d);
      be.batchnorm_backward(n, c, hw, dx.ptr, dgy.ptr, dgamma.ptr, dmean.ptr, dinv.ptr, dgx.ptr,
                            dgg.ptr, dgb.ptr);
      CHECK(gpu_launch_count(d) - launches == (slabs > 1 ? 2 : 1));  // the sums, then gx
      // Sums of N terms (|x| <= 3, invstd about 1 / 1.15): N * eps, relative where it scales.
      const float tol = 8.f * count * kEps;
      check_near(dmean.host(), mean, 3.f * tol, "save_mean");
      check_rel(dinv.host(), invstd, tol, 0.f, "save_invstd");
      check_near(drm.host(), rm, 3.f * tol, "running_mean");
      check_rel(drv.host(), rv, tol, 1e-6f, "running_var");
      check_near(dy.host(), y, 16.f * tol, "y");
      check_near(dgb.host(), gb, tol, "gbeta");
      check_near(dgg.host(), gg, 16.f * tol, "ggamma");
      check_near(dgx.host(), gx, 64.f * tol, "gx");
      {
        INFO("eval backward (running statistics): one launch whatever the slabs");
        std::vector<float> egx(size), egg(c), egb(c);
        cpu().batchnorm_backward_eval(n, c, hw, x.data(), gy.data(), gamma.data(), rm.data(),
                                      rv.data(), 1e-5f, egx.data(), egg.data(), egb.data());
        launches = gpu_launch_count(d);
        be.batchnorm_backward_eval(n, c, hw, dx.ptr, dgy.ptr, dgamma.ptr, drm.ptr, drv.ptr, 1e-5f,
                                   dgx.ptr, dgg.ptr, dgb.ptr);
        CHECK(gpu_launch_count(d) - launches == 1);
        check_near(dgb.host(), egb, tol, "eval gbeta");
        check_near(dgg.host(), egg, 16.f * tol, "eval ggamma");
        check_near(dgx.host(), egx, 4.f * kEps, "eval gx");  // one product, no sum
        check_reproducible(d, [&] {
          be.batchnorm_backward_eval(n, c, hw, dx.ptr, dgy.ptr, dgamma.ptr, drm.ptr, drv.ptr,
                                     1e-5f, dgx.ptr, dgg.ptr, dgb.ptr);
          return std::vector<std::vector<float>>{dgx.host(), dgg.host(), dgb.host()};
        });
      }
      check_reproducible(d, [&] {
        be.batchnorm_forward_train(n, c, hw, dx.ptr, dgamma.ptr, dbeta.ptr, 1e-5f, 0.1f, dy.ptr,
                                   dmean.ptr, dinv.ptr, drm.ptr, drv.ptr);
        be.batchnorm_backward(n, c, hw, dx.ptr, dgy.ptr, dgamma.ptr, dmean.ptr, dinv.ptr, dgx.ptr,
                              dgg.ptr, dgb.ptr);
        return std::vector<std::vector<float>>{dmean.host(), dinv.host(), dy.host(),
                                               dgx.host(),   dgg.host(),  dgb.host()};
      });
    }
  });
}

TEST_CASE("gpu conv bias gradient over many blocks a channel") {
  for_each_gpu([](Device d) {
    // 1x1 convolution, 3 images of 64 x 64: 12,288 values a channel, 6 slabs of them.
    const Conv2dDesc desc{3, 2, 64, 64, 5, 1, 1, 1, 0, 64, 64};
    const size_t xs = size_t(3) * 2 * 64 * 64, ys = size_t(3) * 5 * 64 * 64;
    const auto x = random_values(xs, 79), gy = random_values(ys, 80);
    std::vector<float> gw(5 * 2), gbias(5);
    cpu().conv2d_backward_weight(desc, x.data(), gy.data(), gw.data(), gbias.data());
    DeviceBuffer<float> dx(d, x), dgy(d, gy), dgw(d, gw.size()), dgb(d, size_t(5));
    backend(d).conv2d_backward_weight(desc, dx.ptr, dgy.ptr, dgw.ptr, dgb.ptr);
    const float terms = 3.f * 64 * 64;  // terms of magnitude < 1
    check_near(dgb.host(), gbias, terms * terms * kEps, "gbias");
    check_reproducible(d, [&] {
      backend(d).conv2d_backward_weight(desc, dx.ptr, dgy.ptr, dgw.ptr, dgb.ptr);
      return std::vector<std::vector<float>>{dgb.host()};
    });
  });
}

// ---- the whole path: differentiable ops on Device::sim (and cuda) against Device::cpu ---------

namespace {

// A small network touching every op family here: linear (GEMM, broadcast add, reduce_sum in its
// backward), gelu, layer norm, dropout, relu, softmax, elementwise with broadcasting, sum/mean,
// and cross-entropy. Returns the loss; gradients land on the leaves.
Tensor small_net(const std::vector<Tensor>& p, const Tensor& x,
                 const std::vector<int32_t>& labels) {
  Tensor h = gelu(linear(x, p[0], p[1]));  // [17, 31]
  h = layer_norm(h, p[2], p[3], 1e-5f);
  h = dropout(h, 0.2f, true, 99);
  Tensor attn = softmax(h);                                 // [17, 31]
  h = relu(h * attn + h / (exp(p[3]) + 1.f));               // broadcast [31] over rows
  Tensor logits = linear(h, p[4], p[5]);                    // [17, 3]
  Tensor reg = mean(sum(transpose(h, 0, 1), {1}) * 0.01f);  // a strided view and reductions
  return cross_entropy(logits, labels, 0.1f) + reg;
}

std::vector<Tensor> small_net_params(Device d) {
  Generator gen(42);
  std::vector<Tensor> p = {Tensor::randn({31, 33}, gen, 0.f, 0.2f), Tensor::randn({31}, gen),
                           Tensor::uniform({31}, gen, 0.5f, 1.5f),  Tensor::randn({31}, gen),
                           Tensor::randn({3, 31}, gen, 0.f, 0.2f),  Tensor::randn({3}, gen)};
  for (Tensor& t : p) {
    t = t.to(d);
    t.requires_grad_();
  }
  return p;
}

}  // namespace

TEST_CASE("ops on a GPU device: loss and every gradient match Device::cpu") {
  for_each_gpu([](Device d) {
    Generator gen(7);
    const Tensor x_cpu = Tensor::randn({17, 33}, gen);
    std::vector<int32_t> labels(17);
    for (int i = 0; i < 17; ++i) labels[i] = i % 3;
    auto p_cpu = small_net_params(Device::cpu), p_gpu = small_net_params(d);
    Tensor loss_cpu = small_net(p_cpu, x_cpu, labels);
    Tensor loss_gpu = small_net(p_gpu, x_cpu.to(d), labels);
    CHECK(loss_gpu.device() == d);
    loss_cpu.backward();
    loss_gpu.backward();
    // Every quantity passes through sums of at most 33 terms of size ~1, a few in sequence:
    // 1e-5 is ~100 x (33 eps), generous for the chain yet far below any real discrepancy.
    CHECK(loss_gpu.item() == doctest::Approx(loss_cpu.item()).epsilon(1e-5));
    for (size_t i = 0; i < p_cpu.size(); ++i) {
      INFO("parameter " << i);
      check_near(p_gpu[i].grad().to_vector(), p_cpu[i].grad().to_vector(), 1e-5f, "gradient");
    }
  });
}

TEST_CASE("training steps on a GPU device follow the CPU's losses (Adam)") {
  for_each_gpu([](Device d) {
    Generator gen(8);
    const Tensor x_cpu = Tensor::randn({17, 33}, gen);
    const Tensor x_gpu = x_cpu.to(d);
    std::vector<int32_t> labels(17);
    for (int i = 0; i < 17; ++i) labels[i] = (i * 5) % 3;
    auto p_cpu = small_net_params(Device::cpu), p_gpu = small_net_params(d);
    AdamOptions options;
    options.lr = 1e-2f;
    Adam opt_cpu(p_cpu, options), opt_gpu(p_gpu, options);
    for (int step = 0; step < 5; ++step) {
      opt_cpu.zero_grad();
      opt_gpu.zero_grad();
      Tensor loss_cpu = small_net(p_cpu, x_cpu, labels), loss_gpu = small_net(p_gpu, x_gpu, labels);
      loss_cpu.backward();
      loss_gpu.backward();
      opt_cpu.step();
      opt_gpu.step();
      INFO("step " << step);
      // Five steps of lr 1e-2 let the 1e-5 per-step differences grow only slightly.
      CHECK(loss_gpu.item() == doctest::Approx(loss_cpu.item()).epsilon(1e-4));
    }
  });
}
