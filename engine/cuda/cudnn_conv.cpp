// cudnn_conv.cpp: CudnnConv (engine/cuda/cudnn_conv.h) on cuDNN 9's backend API.
//
// Building a plan, per direction (forward, backward data, backward filter):
//   tensors x [n, c, h, w], w [k, c, r, s], y [n, k, oh, ow], packed NCHW (the strides of a
//   contiguous Tensor), each with a unique id and the alignment its pointer has;
//   a convolution descriptor: cross-correlation (what conv2d computes: no kernel flip), fp32
//   compute, stride and zero padding in both directions, no dilation;
//   the direction's operation (alpha 1, beta 0: the output is overwritten), alone in an
//   operation graph; then cuDNN's heuristics, and the first engine configuration that passes
//   allowed() and finalises into an execution plan with a workspace under kMaxWorkspaceBytes.
// cuDNN's NOT_SUPPORTED answers (a category of status codes) mean "no engine": the call returns
// false and the backend runs im2col. Every other failure is an error.
#include "engine/cuda/cudnn_conv.h"

#include <cudnn.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/cuda/gpu_backend.h"
#include "engine/cuda/gpu_runtime.h"

namespace forge::FORGE_GPU_NS {
namespace {

std::atomic<uint64_t> executions{0};

// Above this a configuration is passed over for the next one (cuDNN's heuristics rank some
// engines first that ask for gigabytes).
constexpr int64_t kMaxWorkspaceBytes = int64_t(256) << 20;

enum class Direction { forward, backward_data, backward_filter };

const char* direction_name(Direction direction) {
  switch (direction) {
    case Direction::forward:
      return "forward";
    case Direction::backward_data:
      return "backward data";
    case Direction::backward_filter:
      return "backward filter";
  }
  return "?";
}

const char* dtype_name(ConvDtype t) {
  return t == ConvDtype::fp32 ? "fp32" : "bf16";
}
cudnnDataType_t cudnn_dtype(ConvDtype t) {
  return t == ConvDtype::fp32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_BFLOAT16;
}
bool all_fp32(ConvTypes t) {
  return t.x == ConvDtype::fp32 && t.w == ConvDtype::fp32 && t.y == ConvDtype::fp32;
}

// "conv2d forward x [2, 3, 7, 9] fp32, w [5, 3, 3, 3] fp32, y [2, 5, 4, 5] fp32, stride 2, pad 1":
// every error names the call it failed for.
std::string describe(Direction direction, const Conv2dDesc& d, ConvTypes t) {
  std::string text = std::string("conv2d ") + direction_name(direction);
  auto tensor = [&text](const char* name, std::array<int, 4> dims, ConvDtype type) {
    text += name;
    for (size_t i = 0; i < dims.size(); ++i)
      text += (i == 0 ? " [" : ", ") + std::to_string(dims[i]);
    text += std::string("] ") + dtype_name(type);
  };
  tensor(" x", {d.n, d.c, d.h, d.w}, t.x);
  tensor(", w", {d.k, d.c, d.r, d.s}, t.w);
  tensor(", y", {d.n, d.k, d.oh, d.ow}, t.y);
  return text + ", stride " + std::to_string(d.stride) + ", pad " + std::to_string(d.pad);
}

bool not_supported(cudnnStatus_t status) {
  return CUDNN_STATUS_CATEGORY(status) == CUDNN_STATUS_NOT_SUPPORTED;
}

void check(cudnnStatus_t status, const char* what, const std::string& context) {
  if (status != CUDNN_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuda: cuDNN ") + what + " failed (" +
                             cudnnGetErrorString(status) + ") for " + context);
}

// The alignment a pointer has, as a power of two up to 16 bytes: what the plan may assume of it.
int64_t pointer_alignment(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  const uintptr_t lowest_bit = address & (~address + 1);
  return address == 0 || lowest_bit > 16 ? 16 : int64_t(lowest_bit);
}

// One backend descriptor, destroyed with its owner.
class Descriptor {
 public:
  Descriptor(cudnnBackendDescriptorType_t type, const std::string& context) {
    check(cudnnBackendCreateDescriptor(type, &desc_), "cudnnBackendCreateDescriptor", context);
  }
  ~Descriptor() {
    if (desc_) cudnnBackendDestroyDescriptor(desc_);
  }
  Descriptor(Descriptor&& other) noexcept : desc_(other.desc_) { other.desc_ = nullptr; }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  Descriptor& operator=(Descriptor&&) = delete;

  cudnnBackendDescriptor_t get() const { return desc_; }
  // The address of the handle, for attributes whose value is a descriptor.
  const cudnnBackendDescriptor_t* ref() const { return &desc_; }

  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count,
           const void* values, const std::string& context) {
    check(cudnnBackendSetAttribute(desc_, name, type, count, values), "cudnnBackendSetAttribute",
          context);
  }
  cudnnStatus_t finalize() { return cudnnBackendFinalize(desc_); }

 private:
  cudnnBackendDescriptor_t desc_ = nullptr;
};

// A finished plan and what it was built from (kept alive as long as the plan).
struct Plan {
  std::vector<Descriptor> parts;
  Descriptor plan;
  int64_t workspace_bytes = 0;
};

constexpr int64_t kUidX = 'x', kUidW = 'w', kUidY = 'y';

Descriptor make_tensor(int64_t uid, const std::array<int64_t, 4>& dims, ConvDtype type,
                       int64_t alignment, const std::string& context) {
  Descriptor t(CUDNN_BACKEND_TENSOR_DESCRIPTOR, context);
  const std::array<int64_t, 4> strides{dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
  const cudnnDataType_t dtype = cudnn_dtype(type);
  t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dtype, context);
  t.set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data(), context);
  t.set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides.data(), context);
  t.set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, context);
  t.set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment, context);
  check(t.finalize(), "tensor descriptor", context);
  return t;
}

Descriptor make_convolution(const Conv2dDesc& d, const std::string& context) {
  Descriptor conv(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, context);
  const int64_t spatial_dims = 2;
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const std::array<int64_t, 2> pad{d.pad, d.pad}, stride{d.stride, d.stride}, dilation{1, 1};
  conv.set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &spatial_dims, context);
  conv.set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute, context);
  conv.set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode, context);
  conv.set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad.data(), context);
  conv.set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad.data(), context);
  conv.set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, stride.data(), context);
  conv.set(CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dilation.data(), context);
  check(conv.finalize(), "convolution descriptor", context);
  return conv;
}

// The direction's operation on tensors x, w, y (for the backward directions, gx, gw and gy take
// the place of the tensor of the same shape).
Descriptor make_operation(Direction direction, const Descriptor& x, const Descriptor& w,
                          const Descriptor& y, const Descriptor& conv, const std::string& context) {
  struct Names {
    cudnnBackendDescriptorType_t type;
    cudnnBackendAttributeName_t x, w, y, conv, alpha, beta;
  };
  const Names names = direction == Direction::forward
                          ? Names{CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA}
                      : direction == Direction::backward_data
                          ? Names{CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA}
                          : Names{CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA};
  Descriptor op(names.type, context);
  const float alpha = 1.f, beta = 0.f;  // fp32 compute takes float scalars
  op.set(names.x, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, x.ref(), context);
  op.set(names.w, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, w.ref(), context);
  op.set(names.y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, y.ref(), context);
  op.set(names.conv, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, conv.ref(), context);
  op.set(names.alpha, CUDNN_TYPE_FLOAT, 1, &alpha, context);
  op.set(names.beta, CUDNN_TYPE_FLOAT, 1, &beta, context);
  check(op.finalize(), "convolution operation", context);
  return op;
}

// The numerical rules an engine must meet, from the notes cuDNN attaches to it:
//   - deterministic: the project's runs are bitwise repeatable (no atomics-ordered sums);
//   - fp32 accumulation (no reduced-precision reduction), as the bf16 design asks;
//   - for all-fp32 tensors, no tensor cores (TF32 rounds inputs to 10 mantissa bits; cuBLAS runs
//     with CUBLAS_DEFAULT_MATH for the same reason, engine/cuda/blas.cpp), and no FFT or Winograd
//     transforms, whose rounding differs from the direct sum's, so fp32 matches the CPU backend
//     within the same bound as im2col.
bool allowed(cudnnBackendDescriptor_t config, ConvTypes types, const std::string& context) {
  Descriptor engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR, context);
  cudnnBackendDescriptor_t engine_handle = engine.get();
  int64_t count = 0;
  check(cudnnBackendGetAttribute(config, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                 1, &count, &engine_handle),
        "engine of a configuration", context);
  std::array<cudnnBackendNumericalNote_t, CUDNN_NUMERICAL_NOTE_TYPE_COUNT> notes{};
  check(cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                                 CUDNN_TYPE_NUMERICAL_NOTE, int64_t(notes.size()), &count,
                                 notes.data()),
        "numerical notes of an engine", context);
  for (int64_t i = 0; i < count; ++i) {
    switch (notes[size_t(i)]) {
      case CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC:
      case CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION:
        return false;
      case CUDNN_NUMERICAL_NOTE_TENSOR_CORE:
      case CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS:
      case CUDNN_NUMERICAL_NOTE_FFT:
      case CUDNN_NUMERICAL_NOTE_WINOGRAD:
      case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4:
      case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6:
      case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13:
        if (all_fp32(types)) return false;
        break;
      default:
        break;
    }
  }
  return true;
}

// The first configuration of heuristics mode `mode` that meets the rules and finalises, or none.
// A configuration whose plan fails to finalise is passed over, as PyTorch and cuDNN's frontend
// do; the first failure outside the NOT_SUPPORTED category is kept in `first_error`, so that a
// call no configuration takes reports it instead of falling back in silence.
std::unique_ptr<Plan> plan_from_heuristics(cudnnHandle_t handle, const Descriptor& graph,
                                           cudnnBackendHeurMode_t mode, ConvTypes types,
                                           cudnnStatus_t& first_error, const std::string& context) {
  Descriptor heuristics(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, context);
  heuristics.set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                 graph.ref(), context);
  heuristics.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, context);
  const cudnnStatus_t status = heuristics.finalize();
  if (not_supported(status)) return nullptr;
  check(status, "engine heuristics", context);

  int64_t available = 0;
  check(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &available, nullptr),
        "engine heuristics' result count", context);
  std::vector<Descriptor> configs;
  std::vector<cudnnBackendDescriptor_t> config_handles;
  for (int64_t i = 0; i < available; ++i) {
    configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, context);
    config_handles.push_back(configs.back().get());
  }
  int64_t returned = 0;
  check(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, available, &returned,
                                 config_handles.data()),
        "engine heuristics' results", context);

  for (int64_t i = 0; i < returned; ++i) {
    if (!allowed(config_handles[size_t(i)], types, context)) continue;
    auto plan = std::make_unique<Plan>(
        Plan{{}, Descriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, context), 0});
    plan->plan.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, context);
    plan->plan.set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                   &config_handles[size_t(i)], context);
    const cudnnStatus_t finalized = plan->plan.finalize();
    if (finalized != CUDNN_STATUS_SUCCESS) {
      if (!not_supported(finalized) && first_error == CUDNN_STATUS_SUCCESS) first_error = finalized;
      continue;
    }
    int64_t count = 0;
    check(cudnnBackendGetAttribute(plan->plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                   CUDNN_TYPE_INT64, 1, &count, &plan->workspace_bytes),
          "workspace size", context);
    if (plan->workspace_bytes > kMaxWorkspaceBytes) continue;
    plan->parts.push_back(std::move(configs[size_t(i)]));
    return plan;
  }
  return nullptr;
}

// A plan for the call, or nullptr when cuDNN has no engine for it that meets the rules.
std::unique_ptr<Plan> build_plan(cudnnHandle_t handle, Direction direction, const Conv2dDesc& d,
                                 ConvTypes types, const std::array<int64_t, 3>& alignments,
                                 const std::string& context) {
  std::vector<Descriptor> parts;
  parts.push_back(make_tensor(kUidX, {d.n, d.c, d.h, d.w}, types.x, alignments[0], context));
  parts.push_back(make_tensor(kUidW, {d.k, d.c, d.r, d.s}, types.w, alignments[1], context));
  parts.push_back(make_tensor(kUidY, {d.n, d.k, d.oh, d.ow}, types.y, alignments[2], context));
  parts.push_back(make_convolution(d, context));
  parts.push_back(make_operation(direction, parts[0], parts[1], parts[2], parts[3], context));

  Descriptor graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, context);
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, parts[4].ref(),
            context);
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, context);
  const cudnnStatus_t status = graph.finalize();
  if (not_supported(status)) return nullptr;
  check(status, "operation graph", context);

  cudnnStatus_t first_error = CUDNN_STATUS_SUCCESS;
  for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    std::unique_ptr<Plan> plan =
        plan_from_heuristics(handle, graph, mode, types, first_error, context);
    if (!plan) continue;
    for (Descriptor& part : parts) plan->parts.push_back(std::move(part));
    plan->parts.push_back(std::move(graph));
    return plan;
  }
  check(first_error, "execution plan (every configuration)", context);
  return nullptr;
}

// Workspace from the backend's caching allocator, returned when the call has been issued (the
// next owner's work is ordered after it on the stream, caching_allocator.h).
class Workspace {
 public:
  Workspace(GpuBackend& backend, int64_t bytes)
      : backend_(backend),
        bytes_(size_t(bytes)),
        data_(bytes > 0 ? backend.allocate(bytes_) : nullptr) {}
  ~Workspace() {
    if (data_) backend_.deallocate(data_, bytes_);
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  void* data() const { return data_; }

 private:
  GpuBackend& backend_;
  size_t bytes_;
  void* data_;
};

}  // namespace

struct CudnnConv::State {
  std::mutex mutex;
  cudnnHandle_t handle = nullptr;  // made on first use: a model with no convolution never loads
                                   // cuDNN's engine libraries
  // (direction, shape, types, alignments) -> plan; nullptr: no engine, run im2col.
  std::map<std::array<int64_t, 18>, std::unique_ptr<Plan>> plans;

  ~State() {
    plans.clear();  // descriptors before the handle they were made with
    if (handle) cudnnDestroy(handle);
  }

  // Runs the direction's convolution on tensors at uids x, w, y; false when there is no plan.
  bool run(GpuBackend& backend, Direction direction, const Conv2dDesc& d, ConvTypes types,
           const void* x, const void* w, const void* y) {
    const std::array<int64_t, 3> alignments{pointer_alignment(x), pointer_alignment(w),
                                            pointer_alignment(y)};
    const std::array<int64_t, 18> key{int64_t(direction),
                                      d.n,
                                      d.c,
                                      d.h,
                                      d.w,
                                      d.k,
                                      d.r,
                                      d.s,
                                      d.stride,
                                      d.pad,
                                      d.oh,
                                      d.ow,
                                      int64_t(types.x),
                                      int64_t(types.w),
                                      int64_t(types.y),
                                      alignments[0],
                                      alignments[1],
                                      alignments[2]};
    std::lock_guard<std::mutex> lock(mutex);
    auto it = plans.find(key);
    if (it == plans.end()) {
      const std::string context = describe(direction, d, types);
      if (!handle) {
        check(cudnnCreate(&handle), "cudnnCreate", context);
        // On the runtime's compute stream (gpu_runtime.h), so that a CUDA graph captures it.
        check(cudnnSetStream(handle, static_cast<cudaStream_t>(compute_stream_handle())),
              "cudnnSetStream", context);
      }
      std::unique_ptr<Plan> plan = build_plan(handle, direction, d, types, alignments, context);
      if (!plan)
        std::fprintf(stderr, "cuda: cuDNN has no engine meeting forge's rules for %s: im2col\n",
                     context.c_str());
      it = plans.emplace(key, std::move(plan)).first;
    }
    if (!it->second) return false;
    const Plan& plan = *it->second;

    Workspace workspace(backend, plan.workspace_bytes);
    void* workspace_data = workspace.data();
    std::array<void*, 3> pointers{const_cast<void*>(x), const_cast<void*>(w), const_cast<void*>(y)};
    const std::array<int64_t, 3> uids{kUidX, kUidW, kUidY};
    const std::string context = describe(direction, d, types);
    Descriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, context);
    pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, pointers.data(),
             context);
    pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids.data(), context);
    pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace_data, context);
    check(pack.finalize(), "variant pack", context);
    check(cudnnBackendExecute(handle, plan.plan.get(), pack.get()), "cudnnBackendExecute", context);
    executions.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
};

CudnnConv::CudnnConv() : state_(std::make_unique<State>()) {}
CudnnConv::~CudnnConv() = default;

bool CudnnConv::forward(GpuBackend& backend, const Conv2dDesc& d, ConvTypes types, const void* x,
                        const void* w, void* y) {
  return state_->run(backend, Direction::forward, d, types, x, w, y);
}
bool CudnnConv::backward_data(GpuBackend& backend, const Conv2dDesc& d, ConvTypes types,
                              const void* gy, const void* w, void* gx) {
  return state_->run(backend, Direction::backward_data, d, types, gx, w, gy);
}
bool CudnnConv::backward_filter(GpuBackend& backend, const Conv2dDesc& d, ConvTypes types,
                                const void* x, const void* gy, void* gw) {
  return state_->run(backend, Direction::backward_filter, d, types, x, gw, gy);
}

uint64_t cudnn_call_count() {
  return executions.load(std::memory_order_relaxed);
}

}  // namespace forge::FORGE_GPU_NS
