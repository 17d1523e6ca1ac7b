// test_gradient_buckets.cpp: where data-parallel training sums gradient buckets, on one rank:
// in the buffers on the parameters' own device (sim here: packed and unpacked by the GPU backend's
// copies, as cuda's are for NCCL), and NCCL only for cuda, refused by name in a build without it.
// Here (tests/train) and not in tests/engine: the sim backend and, in a FORGE_NCCL build, NCCL
// itself (engine/cuda) are linked into forge_train's programs only.
#include <doctest/doctest.h>

#include <stdexcept>

#include "engine/cuda/builtin.h"
#include "engine/dist/device_all_reduce.h"
#include "engine/dist/gradient_reducer.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "tests/tensor_compare.h"

using namespace forge;

TEST_CASE("dist: cpu and sim buckets are summed by MPI; a cuda rank needs NCCL") {
  dist::Communicator& comm = dist::communicator();
  CHECK(dist::make_device_all_reduce(Device::cpu, comm) == nullptr);
  CHECK(dist::make_device_all_reduce(Device::sim, comm) == nullptr);
  if (!dist::nccl_built_in())
    CHECK_THROWS_WITH_AS(dist::make_device_all_reduce(Device::cuda, comm),
                         doctest::Contains("-DFORGE_NCCL=ON"), std::runtime_error);
}

TEST_CASE("dist: the reducer's buckets live on the parameters' device (sim)") {
  register_builtin_backends();
  Generator gen(5);
  std::vector<Tensor> params;
  for (int64_t n : {300, 7, 500}) params.push_back(Tensor::randn({n}, gen).to(Device::sim));
  for (Tensor& p : params) p.requires_grad_();
  // 400 floats a bucket: {500} then {7, 300}.
  dist::GradientReducer reducer(dist::communicator(), params, 400 * sizeof(float));
  CHECK(reducer.bucket_count() == 2);
  Tensor loss = add(sum(mul(params[0], params[0])), sum(mul_scalar(params[2], 3.f)));
  reducer.backward(loss, 0.5f);
  testing::check_close(params[0].grad().to_vector(), mul_scalar(params[0], 1.f).to_vector(), 1e-6f,
                       1e-6f, "w0: 0.5 * 2 w");
  testing::check_close(params[1].grad().to_vector(), std::vector<float>(7, 0.f), 0.f, 0.f,
                       "unused");
  testing::check_close(params[2].grad().to_vector(), std::vector<float>(500, 1.5f), 0.f, 0.f,
                       "w2: 0.5 * 3");
}
