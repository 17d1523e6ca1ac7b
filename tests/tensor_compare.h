// tensor_compare.h: one doctest check of a whole tensor against an expected one, reporting the
// tensor's name, its largest error, where (the multi-index), and the allowance, e.g.
//   grad.blocks.0.attn.qkv.weight: largest error 3.1e-03 at [17, 4] (got .., want ..; scale ..)
// Element i passes when |got_i - want_i| <= rel |want_i| + abs W, W = max_i |want_i|: the abs
// term is relative to the tensor's scale, because cancellation leaves small elements with an
// absolute, not a relative, error. NaN or infinity in `got` always fails.
// Set FORGE_COMPARE_VERBOSE=1 to print every comparison (how the tolerances were measured).
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace forge::testing {

struct Tolerance {
  double rel, abs;  // |got - want| <= rel |want| + abs max|want|
};

inline std::string multi_index(const std::vector<int64_t>& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size());
  for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::string s = "[";
  for (size_t d = 0; d < idx.size(); ++d) s += (d ? ", " : "") + std::to_string(idx[d]);
  return s + "]";
}

// Returns whether it passed (the doctest check is recorded either way). `extra`, when given,
// adds a per-element absolute allowance (same length as `want`).
inline bool check_close(const std::string& name, const std::vector<float>& got,
                        const std::vector<float>& want, const std::vector<int64_t>& shape,
                        Tolerance tol, const std::vector<double>* extra = nullptr) {
  INFO("tensor ", name);
  REQUIRE(got.size() == want.size());
  if (extra) REQUIRE(extra->size() == want.size());
  double scale = 0;
  for (float v : want) scale = std::max(scale, double(std::fabs(v)));
  double worst = 0, worst_err = 0;
  size_t at = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double err = std::fabs(double(got[i]) - want[i]);
    const double allowed =
        tol.rel * std::fabs(want[i]) + tol.abs * scale + (extra ? (*extra)[i] : 0.0);
    const double ratio =
        !std::isfinite(err) ? INFINITY : (allowed > 0 ? err / allowed : (err > 0 ? INFINITY : 0));
    if (ratio > worst || i == 0) {
      worst = ratio;
      worst_err = err;
      at = i;
    }
  }
  char line[640];
  std::snprintf(line, sizeof line,
                "%s: largest error %.3g at %s (got %.9g, want %.9g; scale %.3g), %.3gx the "
                "allowance (rel %.1g + abs %.1g x scale + %.2g there)",
                name.c_str(), worst_err, multi_index(shape, int64_t(at)).c_str(),
                want.empty() ? 0.0 : got[at], want.empty() ? 0.0 : want[at], scale, worst, tol.rel,
                tol.abs, extra && !want.empty() ? (*extra)[at] : 0.0);
  CHECK_MESSAGE(worst <= 1.0, line);
  if (std::getenv("FORGE_COMPARE_VERBOSE")) MESSAGE(line);
  return worst <= 1.0;
}

// The plain element-wise form, for kernels checked against the CPU: every element within
// atol + rtol |want| (NaN fails); reports how many are beyond it and the worst element.
inline void check_close(const std::vector<float>& got, const std::vector<float>& want, float rtol,
                        float atol, const std::string& what) {
  REQUIRE(got.size() == want.size());
  size_t bad = 0, worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double(got[i]) - want[i]),
                 allowed = atol + rtol * std::fabs(want[i]);
    if (!(err <= allowed)) ++bad;  // NaN counts as bad
    if (!(err - allowed <= worst_excess)) worst_excess = err - allowed, worst = i;
  }
  INFO(what << ": " << bad << " of " << got.size() << " beyond tolerance; worst at " << worst
            << ": " << (got.empty() ? 0.f : got[worst]) << " vs "
            << (want.empty() ? 0.f : want[worst]));
  CHECK(bad == 0);
}

}  // namespace forge::testing
