// tensor.cpp: creation, inspection, host transfer and the non-recorded in-place helpers of Tensor.
// The differentiable views live in ops/shape_ops.cpp; Tensor's view methods forward to them.
#include "engine/tensor.h"

#include <stdexcept>
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace forge {

Storage::Storage(Device dev, size_t n_bytes)
    : device(dev), bytes(n_bytes), data(n_bytes ? backend(dev).allocate(n_bytes) : nullptr) {}

Storage::~Storage() {
  if (data) backend(device).deallocate(data, bytes);
}

TensorImpl& Tensor::impl() const {
  if (!impl_) throw std::logic_error("use of an undefined tensor");
  return *impl_;
}

Tensor Tensor::empty(const Shape& shape, Device device) {
  for (int64_t e : shape)
    if (e < 0) throw std::invalid_argument("empty: negative extent in shape " + shape_str(shape));
  return over_storage(std::make_shared<Storage>(device, shape_numel(shape) * sizeof(float)), shape);
}

Tensor Tensor::over_storage(std::shared_ptr<Storage> storage, const Shape& shape) {
  if (!storage || storage->bytes < size_t(shape_numel(shape)) * sizeof(float))
    throw std::invalid_argument("over_storage: shape " + shape_str(shape) +
                                " is larger than the storage");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, Device device) {
  return full(shape, 0.f, device);
}
Tensor Tensor::ones(const Shape& shape, Device device) {
  return full(shape, 1.f, device);
}

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = empty(shape, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  if (static_cast<int64_t>(values.size()) != shape_numel(shape))
    throw std::invalid_argument("from_vector: " + std::to_string(values.size()) +
                                " values do not fill shape " + shape_str(shape));
  Tensor t = empty(shape, device);
  if (!values.empty()) backend(device).copy_from_host(t.data(), values.data(), values.size() * 4);
  return t;
}

Tensor Tensor::randn(const Shape& shape, Generator& gen, float mean, float std, Device device) {
  std::vector<float> v(shape_numel(shape));
  for (float& x : v) x = mean + std * static_cast<float>(gen.normal());
  return from_vector(v, shape, device);
}

Tensor Tensor::uniform(const Shape& shape, Generator& gen, float low, float high, Device device) {
  std::vector<float> v(shape_numel(shape));
  for (float& x : v) x = low + (high - low) * static_cast<float>(gen.uniform());
  return from_vector(v, shape, device);
}

int64_t Tensor::size(int axis) const {
  return shape()[normalize_axis(axis, ndim(), "size")];
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int i = ndim() - 1; i >= 0; --i) {
    if (shape()[i] != 1 && strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

float* Tensor::data() const {
  return static_cast<float*>(storage()->data) + offset();
}

std::vector<float> Tensor::to_vector() const {
  Tensor c = is_contiguous() ? *this : detach().contiguous();
  std::vector<float> v(numel());
  if (!v.empty()) backend(device()).copy_to_host(v.data(), c.data(), v.size() * sizeof(float));
  return v;
}

float Tensor::item() const {
  if (numel() != 1)
    throw std::invalid_argument("item: tensor of shape " + shape_str(shape()) +
                                " has more than one element");
  return to_vector()[0];
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return clone();
  return from_vector(to_vector(), shape(), target);
}

Tensor Tensor::clone() const {
  NoGradGuard no_grad;
  Tensor src = is_contiguous() ? *this : contiguous();
  Tensor t = empty(shape(), device());
  if (numel()) backend(device()).copy(t.data(), src.data(), numel() * sizeof(float));
  return t;
}

Tensor Tensor::reshape(const Shape& s) const {
  return forge::reshape(*this, s);
}
Tensor Tensor::permute(const std::vector<int>& o) const {
  return forge::permute(*this, o);
}
Tensor Tensor::transpose(int a, int b) const {
  return forge::transpose(*this, a, b);
}
Tensor Tensor::slice(int axis, int64_t start, int64_t end) const {
  return forge::slice(*this, axis, start, end);
}
Tensor Tensor::contiguous() const {
  return forge::contiguous(*this);
}

void Tensor::fill_(float value) const {
  if (!is_contiguous()) throw std::invalid_argument("fill_: tensor is not contiguous");
  backend(device()).fill(data(), numel(), value);
}

void Tensor::copy_from(const Tensor& src) const {
  if (src.shape() != shape())
    throw std::invalid_argument("copy_from: source shape " + shape_str(src.shape()) +
                                " differs from destination shape " + shape_str(shape()));
  if (!is_contiguous()) throw std::invalid_argument("copy_from: destination is not contiguous");
  Tensor s = src.device() == device() ? src.detach().contiguous() : src.to(device());
  if (numel()) backend(device()).copy(data(), s.data(), numel() * sizeof(float));
}

Tensor& Tensor::requires_grad_(bool on) {
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  return Tensor(impl().grad);
}
void Tensor::set_grad(const Tensor& g) const {
  impl().grad = g.impl_ptr();
}
void Tensor::zero_grad() const {
  impl().grad.reset();
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = storage();
  impl->shape = shape();
  impl->strides = strides();
  impl->offset = offset();
  return Tensor(std::move(impl));
}

void Tensor::backward() const {
  if (numel() != 1)
    throw std::invalid_argument("backward: needs a scalar (one element), got shape " +
                                shape_str(shape()));
  run_backward(*this, Tensor::ones(shape(), device()));
}

}  // namespace forge
