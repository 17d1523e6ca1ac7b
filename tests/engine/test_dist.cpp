// test_dist.cpp: engine/dist on one rank (the multi-rank runs are tests/dist, through mpirun):
// the gradient reducer's buckets and share weight, and sync batch norm, which on one rank must be
// batch_norm2d computed by other ops.
#include <doctest/doctest.h>

#include "engine/dist/communicator.h"
#include "engine/dist/gradient_reducer.h"
#include "engine/dist/sync_batch_norm.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "tests/tensor_compare.h"

using namespace forge;

namespace {
void close(const Tensor& got, const Tensor& want, float tol, const char* what) {
  testing::check_close(got.to_vector(), want.to_vector(), tol, tol, what);
}
}  // namespace

TEST_CASE("dist: a process not started by a launcher is rank 0 of 1") {
  dist::Communicator& comm = dist::communicator();
  CHECK(comm.rank() == 0);
  CHECK(comm.size() == 1);
  double v[2] = {1.5, -2};
  comm.all_reduce_sum(v, 2);
  CHECK(v[1] == -2);
  CHECK(dist::broadcast_string(comm, "run", 0) == "run");
}

TEST_CASE(
    "dist: the reducer cuts buckets in reverse parameter order and seeds backward with the share") {
  Generator gen(3);
  std::vector<Tensor> params;
  for (int64_t n : {1000, 10, 2000, 30}) params.push_back(Tensor::randn({n}, gen).requires_grad_());
  // 3000 floats a bucket: {30, 2000} then {10, 1000}.
  dist::GradientReducer reducer(dist::communicator(), params, 3000 * sizeof(float));
  CHECK(reducer.bucket_count() == 2);
  CHECK(reducer.bytes_per_step() == 3040 * sizeof(float));
  // Parameter 1 takes no part: it gets a zero gradient, the others 0.25 * their plain gradient.
  Tensor loss = add(add(sum(mul(params[0], params[0])), sum(params[2])), sum(params[3]));
  reducer.backward(loss, 0.25f);
  close(params[0].grad(), mul_scalar(params[0], 0.5f), 1e-6f, "w0");
  close(params[1].grad(), Tensor::zeros({10}), 0.f, "unused");
  close(params[2].grad(), Tensor::full({2000}, 0.25f), 0.f, "w2");
  CHECK(reducer.timing().steps == 1);
}

TEST_CASE("dist: sync batch norm on one rank is batch_norm2d") {
  Generator gen(5);
  Tensor x = Tensor::randn({4, 3, 5, 5}, gen, 1.f, 2.f);
  Tensor gamma = Tensor::randn({3}, gen).requires_grad_();
  Tensor beta = Tensor::randn({3}, gen).requires_grad_();
  Tensor up = Tensor::randn({4, 3, 5, 5}, gen);  // the gradient coming back
  x.requires_grad_();
  Tensor rm1 = Tensor::zeros({3}), rv1 = Tensor::ones({3});
  Tensor y1 = batch_norm2d(x, gamma, beta, rm1, rv1, true, 0.1f, 1e-5f);
  sum(mul(y1, up)).backward();
  const Tensor gx1 = x.grad().clone(), gg1 = gamma.grad().clone(), gb1 = beta.grad().clone();
  x.zero_grad();
  gamma.zero_grad();
  beta.zero_grad();
  Tensor rm2 = Tensor::zeros({3}), rv2 = Tensor::ones({3});
  Tensor y2 = dist::sync_batch_norm2d(x, gamma, beta, rm2, rv2, 0.1f, 1e-5f, dist::communicator());
  sum(mul(y2, up)).backward();
  close(y2, y1, 1e-5f, "y");
  close(x.grad(), gx1, 1e-4f, "dx");
  close(gamma.grad(), gg1, 1e-4f, "dgamma");
  close(beta.grad(), gb1, 1e-4f, "dbeta");
  close(rm2, rm1, 1e-6f, "running mean");
  close(rv2, rv1, 1e-5f, "running var");
}
