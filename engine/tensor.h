// tensor.h: the float32 n-dimensional array at the centre of the engine.
//
// A Tensor is a cheap handle (shared pointer) to a TensorImpl: a view (shape, strides, offset)
// onto a Storage (device memory), plus autograd state (requires_grad, the accumulated grad, the
// node that produced it). Copying a Tensor copies the handle, not the data; views (reshape,
// permute, slice) share storage; contiguous() and clone() copy.
//
// Backend primitives only ever see contiguous buffers: ops call contiguous() on their inputs.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/device.h"
#include "engine/random.h"
#include "engine/shape.h"

namespace forge {

struct Node;

// Device memory of a fixed size, freed through its backend when the last view goes away.
struct Storage {
  Storage(Device device, size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  Device device;
  size_t bytes;
  void* data;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape, strides;
  int64_t offset = 0;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated by backward() on leaves
  std::shared_ptr<Node> grad_fn;     // the op that produced this tensor, if recorded
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (defined() is false)
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation --------------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, Device device = Device::cpu);
  // A contiguous tensor of `shape` over the front of `storage` (which must hold it), e.g. a
  // buffer the caller owns and reuses (train/batch_stream.h's upload slots).
  static Tensor over_storage(std::shared_ptr<Storage> storage, const Shape& shape);
  static Tensor zeros(const Shape& shape, Device device = Device::cpu);
  static Tensor ones(const Shape& shape, Device device = Device::cpu);
  static Tensor full(const Shape& shape, float value, Device device = Device::cpu);
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                            Device device = Device::cpu);
  static Tensor randn(const Shape& shape, Generator& gen, float mean = 0.f, float std = 1.f,
                      Device device = Device::cpu);
  static Tensor uniform(const Shape& shape, Generator& gen, float low, float high,
                        Device device = Device::cpu);

  // ---- inspection ------------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int ndim() const { return static_cast<int>(impl().shape.size()); }
  int64_t size(int axis) const;  // axis may be negative
  int64_t numel() const { return shape_numel(impl().shape); }
  Device device() const { return impl().storage->device; }
  bool is_contiguous() const;
  // Device pointer to the first element (storage + offset). For backend calls on contiguous
  // tensors.
  float* data() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  // Copies to host in logical (row-major) order.
  std::vector<float> to_vector() const;
  float item() const;              // the single element of a one-element tensor
  Tensor to(Device device) const;  // a copy on another device (shares nothing)
  Tensor clone() const;            // a contiguous copy, not recorded by autograd

  // ---- views and copies (differentiable; see engine/ops.h) -------------------------------------
  Tensor reshape(const Shape& shape) const;
  Tensor permute(const std::vector<int>& order) const;
  Tensor transpose(int a, int b) const;
  Tensor slice(int axis, int64_t start, int64_t end) const;
  Tensor contiguous() const;

  // ---- in place (not recorded by autograd: for initialisation and optimizers) -----------------
  void fill_(float value) const;
  void copy_from(const Tensor& src) const;  // same shape, any devices

  // ---- autograd --------------------------------------------------------------------------------
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& requires_grad_(bool on = true);
  Tensor grad() const;  // undefined until backward() reaches this leaf
  void set_grad(const Tensor& g) const;
  void zero_grad() const;  // drops the accumulated gradient
  // A new handle on the same storage with no autograd history.
  Tensor detach() const;
  // Reverse-mode differentiation from this scalar (one element) tensor.
  void backward() const;
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace forge
