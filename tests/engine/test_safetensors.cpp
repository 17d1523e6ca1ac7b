// test_safetensors.cpp: the safetensors writer and reader, and checkpoints built on them.
//   - round trips are bit-exact (signed zero, NaN payloads, denormals, empty and 0-d tensors);
//   - the files are checked by a reader written here, independent of the engine's, that parses
//     the bytes by hand (length prefix, JSON header, offsets, raw floats);
//   - malformed files are refused with an error naming the file, never read out of bounds;
//   - a failed save leaves no temporary file and never damages the file already there.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "engine/io/checkpoint.h"
#include "engine/io/safetensors.h"
#include "tests/temp_dir.h"

using namespace forge;
using forge::test::TempDir;
namespace fs = std::filesystem;

namespace {

float from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::vector<uint32_t> bits_of(const std::vector<float>& v) {
  std::vector<uint32_t> b(v.size());
  if (!v.empty()) std::memcpy(b.data(), v.data(), v.size() * 4);
  return b;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), bytes.size());
}

// A file with the given header text (length prefix added, no padding) and data bytes.
std::string raw_file(const std::string& header, const std::string& data) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(uint64_t(header.size()) >> (8 * i));
  return bytes + header + data;
}

// The message of the std::runtime_error that `fn` throws; fails the test if it throws nothing
// or something else.
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::runtime_error& e) {
    return e.what();
  } catch (...) {
    FAIL("threw something other than std::runtime_error");
  }
  FAIL("did not throw");
  return {};
}

// Tensors covering the awkward cases: special float values, 0-d, 1-d, 4-d, empty.
NamedTensors sample_tensors() {
  const std::vector<uint32_t> special_bits = {
      0x00000000u,  // +0
      0x80000000u,  // -0
      0x7fc00001u,  // quiet NaN with a payload
      0xffc12345u,  // negative NaN, another payload
      0x7f800000u,  // +inf
      0xff800000u,  // -inf
      0x00000001u,  // smallest denormal
      0x807fffffu,  // largest negative denormal
      0x7f7fffffu,  // FLT_MAX
  };
  std::vector<float> special;
  for (uint32_t b : special_bits) special.push_back(from_bits(b));
  std::vector<float> ramp(2 * 3 * 1 * 2);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = 0.25f * float(i) - 1.5f;
  return {{"special", Tensor::from_vector(special, {9})},
          {"scalar", Tensor::from_vector({3.5f}, {})},
          {"ramp.4d", Tensor::from_vector(ramp, {2, 3, 1, 2})},
          {"empty", Tensor::zeros({0, 3})}};
}

}  // namespace

TEST_CASE("safetensors: round trip is bit-exact and keeps order and metadata") {
  TempDir dir("safetensors");
  const std::string path = dir.file("sample.safetensors");
  const NamedTensors tensors = sample_tensors();
  const Metadata metadata = {{"preset", "vit_tiny"}, {"classes", R"(["anime","selfie"])"}};
  save_safetensors(path, tensors, metadata);
  CHECK(!fs::exists(path + ".tmp." + std::to_string(::getpid())));

  SafetensorsFile file = load_safetensors(path);
  CHECK(file.metadata == metadata);
  REQUIRE(file.tensors.size() == tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    CAPTURE(tensors[i].first);
    CHECK(file.tensors[i].first == tensors[i].first);
    CHECK(file.tensors[i].second.shape() == tensors[i].second.shape());
    CHECK(bits_of(file.tensors[i].second.to_vector()) == bits_of(tensors[i].second.to_vector()));
  }
  CHECK(load_safetensors_metadata(path) == metadata);
  REQUIRE(file.find("scalar"));
  CHECK(file.find("scalar")->item() == 3.5f);
  CHECK(file.find("missing") == nullptr);
}

TEST_CASE("safetensors: non-contiguous tensors are written in logical order") {
  TempDir dir("safetensors");
  const std::string path = dir.file("t.safetensors");
  Tensor m = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor t = m.transpose(0, 1);  // [3, 2] view: 1 4 2 5 3 6
  save_safetensors(path, {{"t", t}});
  SafetensorsFile file = load_safetensors(path);
  CHECK(file.tensors[0].second.shape() == Shape{3, 2});
  CHECK(file.tensors[0].second.to_vector() == std::vector<float>{1, 4, 2, 5, 3, 6});
}

TEST_CASE("safetensors: the bytes match the format, read by an independent parser") {
  TempDir dir("safetensors");
  const std::string path = dir.file("sample.safetensors");
  const NamedTensors tensors = sample_tensors();
  save_safetensors(path, tensors, {{"k", "v"}});
  const std::string bytes = read_bytes(path);

  // 8-byte little-endian header length, header padded to a multiple of 8.
  REQUIRE(bytes.size() >= 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<unsigned char>(bytes[i]);
  CHECK(n % 8 == 0);
  REQUIRE(8 + n <= bytes.size());
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
  CHECK(header["__metadata__"] == nlohmann::json{{"k", "v"}});
  CHECK(header.size() == tensors.size() + 1);

  // Each tensor: F32, its shape, offsets following each other in the order written, exactly
  // numel * 4 bytes, and those bytes the tensor's floats.
  const std::string data = bytes.substr(8 + n);
  uint64_t expected_begin = 0;
  for (const auto& [name, tensor] : tensors) {
    CAPTURE(name);
    REQUIRE(header.contains(name));
    const nlohmann::json& info = header[name];
    CHECK(info["dtype"] == "F32");
    CHECK(info["shape"].get<Shape>() == tensor.shape());
    const uint64_t begin = info["data_offsets"][0], end = info["data_offsets"][1];
    CHECK(begin == expected_begin);
    CHECK(end - begin == uint64_t(tensor.numel()) * 4);
    REQUIRE(end <= data.size());
    const std::vector<float> values = tensor.to_vector();
    CHECK(std::memcmp(data.data() + begin, values.data(), values.size() * 4) == 0);
    expected_begin = end;
  }
  CHECK(expected_begin == data.size());  // nothing after the last tensor
}

TEST_CASE("safetensors: malformed files are refused with the file named") {
  TempDir dir("safetensors");
  const std::string good = dir.file("good.safetensors");
  save_safetensors(good, sample_tensors(), {{"k", "v"}});
  const std::string bytes = read_bytes(good);
  const std::string bad = dir.file("bad.safetensors");
  auto refused = [&](const std::string& contents, const char* problem) {
    CAPTURE(problem);
    write_bytes(bad, contents);
    const std::string message = error_of([&] { load_safetensors(bad); });
    CAPTURE(message);
    CHECK(message.find(bad) != std::string::npos);
    return message;
  };

  SUBCASE("truncated anywhere") {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<unsigned char>(bytes[i]);
    for (size_t cut : {size_t(0), size_t(3), size_t(7), size_t(8), size_t(12), size_t(8 + n / 2),
                       size_t(8 + n), size_t(8 + n + 5), bytes.size() - 1})
      refused(bytes.substr(0, cut), "truncated");
  }
  SUBCASE("header length of 2^60 is refused before allocating") {
    std::string huge = bytes;
    for (int i = 0; i < 8; ++i) huge[i] = static_cast<char>((uint64_t(1) << 60) >> (8 * i));
    CHECK(refused(huge, "2^60").find("limit") != std::string::npos);
  }
  SUBCASE("garbage") {
    std::string garbage(300, '\0');
    for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(i * 131 + 7);
    refused(garbage, "garbage bytes");
    refused(raw_file(std::string(16, '\xff'), ""), "non-UTF-8 header");
  }
  SUBCASE("bad JSON and bad fields") {
    const std::string data(8, '\0');  // two floats
    auto entry = [](const std::string& fields) { return "{\"x\": {" + fields + "}}"; };
    refused(raw_file("{\"x\": {\"dtype\": \"F32\",", data), "bad JSON");
    refused(raw_file("[1, 2]", data), "not an object");
    refused(raw_file(entry(R"("dtype":"F64","shape":[1],"data_offsets":[0,8])"), data), "dtype");
    refused(raw_file(entry(R"("dtype":"bf16","shape":[4],"data_offsets":[0,8])"), data),
            "dtype in lower case");
    refused(raw_file(entry(R"("dtype":"F16","shape":[2],"data_offsets":[0,8])"), data),
            "offsets not shape * 2");
    refused(raw_file(entry(R"("dtype":"F32","shape":[-2],"data_offsets":[0,8])"), data), "shape");
    refused(raw_file(entry(R"("dtype":"F32","shape":[2],"data_offsets":[0,16])"), data),
            "offsets out of range");
    refused(raw_file(entry(R"("dtype":"F32","shape":[2],"data_offsets":[8,0])"), data),
            "offsets reversed");
    refused(raw_file(entry(R"("dtype":"F32","shape":[1],"data_offsets":[0,8])"), data),
            "offsets not shape * 4");
    refused(raw_file(entry(R"("dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8])"),
                     data),
            "element count overflow");
    refused(raw_file(entry(R"("dtype":"F32","shape":[1],"data_offsets":[0,4])"), data),
            "trailing bytes");
    refused(raw_file(entry(R"("dtype":"F32","shape":[1],"data_offsets":[4,8])"), data),
            "gap before");
    refused(raw_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                     data),
            "overlap");
    refused(raw_file(R"({"__metadata__":{"k":1}})", ""), "metadata value not a string");
  }
  SUBCASE("not a file at all") {
    const std::string message = error_of([&] { load_safetensors(dir.file("missing")); });
    CHECK(message.find(dir.file("missing")) != std::string::npos);
  }
}

TEST_CASE("safetensors: F16, BF16 and I64 files built by hand read exactly") {
  TempDir dir("safetensors");
  const std::string path = dir.file("typed.safetensors");
  // Little-endian bytes: F16 1, -2, 65504, 2^-24, -0, inf; BF16 1, -5; I64 3, -7, 2^53.
  const std::string f16("\x00\x3c\x00\xc0\xff\x7b\x01\x00\x00\x80\x00\x7c", 12);
  const std::string bf16("\x80\x3f\xa0\xc0", 4);
  std::string i64(24, '\0');
  const int64_t integers[3] = {3, -7, int64_t(1) << 53};
  std::memcpy(i64.data(), integers, 24);
  write_bytes(path, raw_file(R"({"h":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},)"
                             R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[12,16]},)"
                             R"("n":{"dtype":"I64","shape":[3],"data_offsets":[16,40]}})",
                             f16 + bf16 + i64));
  const SafetensorsFile file = load_safetensors(path);
  REQUIRE(file.find("h"));
  CHECK(file.find("h")->shape() == Shape{2, 3});
  CHECK(bits_of(file.find("h")->to_vector()) ==
        bits_of({1.f, -2.f, 65504.f, 0x1p-24f, -0.f, INFINITY}));
  CHECK(file.find("b")->to_vector() == std::vector<float>{1.f, -5.f});
  CHECK(file.find("n")->to_vector() == std::vector<float>{3.f, -7.f, 0x1p53f});
  CHECK(file.dtypes ==
        StoredDtypes{{"h", StoredDtype::f16}, {"b", StoredDtype::bf16}, {"n", StoredDtype::i64}});

  // An I64 that float cannot hold is refused, naming the file, the tensor and the value.
  const int64_t odd = (int64_t(1) << 24) + 1;
  std::memcpy(i64.data() + 8, &odd, 8);
  write_bytes(path, raw_file(R"({"n":{"dtype":"I64","shape":[3],"data_offsets":[0,24]}})", i64));
  const std::string message = error_of([&] { load_safetensors(path); });
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("'n' element 1") != std::string::npos);
  CHECK(message.find("16777217") != std::string::npos);
}

TEST_CASE("safetensors: writing F16, BF16 and I64 stores the rounded bytes and names the dtype") {
  TempDir dir("safetensors");
  const std::string path = dir.file("typed.safetensors");
  const Tensor x = Tensor::from_vector({1.f, 1.f + 3 * 0x1p-11f, -65520.f}, {3});
  const Tensor steps = Tensor::from_vector({42.f}, {});
  save_safetensors(
      path, {{"h", x}, {"b", x}, {"f", x}, {"steps", steps}}, {},
      {{"h", StoredDtype::f16}, {"b", StoredDtype::bf16}, {"steps", StoredDtype::i64}});
  const std::string bytes = read_bytes(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<unsigned char>(bytes[i]);
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
  CHECK(header["h"]["dtype"] == "F16");
  CHECK(header["b"]["dtype"] == "BF16");
  CHECK(header["f"]["dtype"] == "F32");
  CHECK(header["steps"]["dtype"] == "I64");
  CHECK(header["steps"]["shape"] == nlohmann::json::array());
  const std::string data = bytes.substr(8 + n);
  REQUIRE(data.size() == 6 + 6 + 12 + 8);
  CHECK(data.substr(0, 6) == std::string("\x00\x3c\x02\x3c\x00\xfc", 6));  // tie up, -inf
  CHECK(data.substr(6, 6) == std::string("\x80\x3f\x80\x3f\x80\xc7", 6));  // 1, 1, -65536
  CHECK(data.substr(24, 8) == std::string("\x2a\0\0\0\0\0\0\0", 8));

  const SafetensorsFile file = load_safetensors(path);
  CHECK(file.find("h")->to_vector() == std::vector<float>{1.f, 1.f + 0x1p-9f, -INFINITY});
  CHECK(file.find("f")->to_vector() == x.to_vector());
  CHECK(file.find("steps")->item() == 42.f);

  const std::string other = dir.file("refused.safetensors");
  CHECK_THROWS_WITH_AS(save_safetensors(other, {{"x", x}}, {}, {{"x", StoredDtype::i64}}),
                       doctest::Contains("'x' element 1"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(save_safetensors(other, {{"x", x}}, {}, {{"y", StoredDtype::f16}}),
                       doctest::Contains("'y'"), std::invalid_argument);
  CHECK(!fs::exists(other));
}

TEST_CASE("safetensors: a failed save leaves no temporary file and the old file intact") {
  TempDir dir("safetensors");
  const std::string path = dir.file("model.safetensors");
  const NamedTensors original = {{"w", Tensor::from_vector({1, 2, 3}, {3})}};
  save_safetensors(path, original);
  const std::string before = read_bytes(path);
  const NamedTensors replacement = {{"w", Tensor::from_vector({7, 8, 9}, {3})}};
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());  // AtomicFile's

  SUBCASE("the disk fills up while writing") {
    // The temporary -> /dev/full: opening succeeds, every write fails with ENOSPC.
    fs::create_symlink("/dev/full", temporary);
    CHECK(error_of([&] { save_safetensors(path, replacement); }).find(path) != std::string::npos);
  }
  SUBCASE("the temporary file cannot be created") {
    fs::create_directory(temporary);  // a directory in the way of the temporary file
    CHECK(error_of([&] { save_safetensors(path, replacement); }).find(path) != std::string::npos);
    fs::remove(temporary);
  }
  SUBCASE("an invalid tensor list") {
    CHECK_THROWS_AS(save_safetensors(path, {{"w", Tensor()}}), std::invalid_argument);
    CHECK_THROWS_AS(save_safetensors(path, {{"w", original[0].second}, {"w", original[0].second}}),
                    std::invalid_argument);
  }
  CHECK(!fs::exists(temporary));
  CHECK(read_bytes(path) == before);
  // A directory that does not exist: refused, naming the path.
  const std::string nowhere = dir.file("no/such/dir/model.safetensors");
  CHECK(error_of([&] { save_safetensors(nowhere, original); }).find(nowhere) != std::string::npos);
}

TEST_CASE("checkpoint: model, optimizer and progress survive a save and load") {
  TempDir dir("safetensors");
  const std::string path = dir.file("ckpt.safetensors");
  Generator gen(5);
  Tensor w = Tensor::randn({4, 3}, gen), running = Tensor::randn({3}, gen);
  w.requires_grad_();
  AdamW opt({w}, {.lr = 0.01f, .weight_decay = 0.1f});
  w.set_grad(Tensor::randn({4, 3}, gen));
  opt.step();
  CheckpointInfo info{.step = 1, .epoch = 0, .metadata = {{"preset", "cnn_small"}}};
  save_checkpoint(path, {{"fc.weight", w}, {"bn.running_mean", running}}, &opt, info);
  CHECK(load_safetensors(path).find("optim.exp_avg.0"));  // plain safetensors underneath

  // A fresh model and optimizer take the saved values and then step identically.
  Tensor w2 = Tensor::zeros({4, 3}), running2 = Tensor::zeros({3});
  w2.requires_grad_();
  AdamW opt2({w2}, {.lr = 0.01f, .weight_decay = 0.1f});
  CheckpointInfo loaded =
      load_checkpoint(path, {{"fc.weight", w2}, {"bn.running_mean", running2}}, &opt2);
  CHECK(loaded.step == 1);
  CHECK(loaded.epoch == 0);
  CHECK(loaded.metadata == info.metadata);
  CHECK(read_checkpoint_info(path).metadata == info.metadata);
  CHECK(w2.to_vector() == w.to_vector());
  CHECK(running2.to_vector() == running.to_vector());
  CHECK(opt2.step_count() == 1);
  Tensor g = Tensor::randn({4, 3}, gen);
  w.set_grad(g);
  w2.set_grad(g);
  opt.step();
  opt2.step();
  CHECK(w2.to_vector() == w.to_vector());

  // Evaluation: no optimizer, optimizer state ignored.
  Tensor w3 = Tensor::zeros({4, 3}), running3 = Tensor::zeros({3});
  load_checkpoint(path, {{"fc.weight", w3}, {"bn.running_mean", running3}}, nullptr);
  CHECK(running3.to_vector() == running.to_vector());
}

TEST_CASE("checkpoint: a mismatched model is refused, naming the first mismatch") {
  TempDir dir("safetensors");
  const std::string path = dir.file("ckpt.safetensors");
  Tensor a = Tensor::ones({2, 2}), b = Tensor::ones({3});
  save_checkpoint(path, {{"a", a}, {"b", b}}, nullptr, {});
  Tensor wrong_shape = Tensor::zeros({2, 3}), untouched = Tensor::zeros({3});
  auto message = error_of([&] {
    load_checkpoint(path, {{"b", untouched}, {"a", wrong_shape}}, nullptr);
  });
  CHECK(message.find("model.a") != std::string::npos);
  CHECK(message.find("[2, 2]") != std::string::npos);
  CHECK(untouched.to_vector() == std::vector<float>{0, 0, 0});  // nothing copied before the check
  CHECK(error_of([&] {
          load_checkpoint(path, {{"a", a}, {"b", b}, {"c", b}}, nullptr);
        }).find("missing tensor model.c") != std::string::npos);
  CHECK(error_of([&] {
          load_checkpoint(path, {{"a", a}}, nullptr);
        }).find("model.b") != std::string::npos);
  // The file has no optimizer state: loading one into an optimizer is refused.
  Tensor p = Tensor::ones({3});
  p.requires_grad_();
  SGD sgd({p}, {.lr = 0.1f, .momentum = 0.9f});
  CHECK(error_of([&] {
          load_checkpoint(path, {{"a", a}, {"b", b}}, &sgd);
        }).find(path) != std::string::npos);
  CHECK_THROWS_AS(save_checkpoint(path, {}, nullptr, {.metadata = {{"checkpoint.step", "3"}}}),
                  std::invalid_argument);
}
