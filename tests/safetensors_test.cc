// Safetensors reader, writer, sharding and half-precision conversions.
#include "model/safetensors.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/input_error.h"
#include "test_util.h"

namespace tracelm {
namespace {

using testing::TempDir;

// A safetensors file from a header text and data bytes.
std::string st_bytes(const std::string& header, const std::string& data = "") {
  uint64_t n = header.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

std::string bytes_of(const void* p, size_t n) {
  return std::string(static_cast<const char*>(p), n);
}

// The names in a directory, sorted.
std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(path.c_str())) {
    while (dirent* e = ::readdir(d))
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
        out.push_back(e->d_name);
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Opening `bytes` throws InputError whose message names the file and
// contains every one of `needles`.
void expect_input_error(const std::string& bytes, std::vector<std::string> needles) {
  TempDir dir;
  std::string path = dir.file("bad.safetensors");
  testing::write_file(path, bytes);
  try {
    SafetensorsFile f(path);
    ADD_FAILURE() << "no error for header " << bytes.substr(8, 300);
  } catch (const InputError& e) {
    std::string msg = e.what();
    EXPECT_EQ(e.file(), path);
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    for (const std::string& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << msg;
  }
}

// One valid F32 [2] tensor entry named `name` at [begin, begin + 8).
std::string entry(const std::string& name, int begin) {
  return "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" +
         std::to_string(begin) + "," + std::to_string(begin + 8) + "]}";
}

// ---------------------------------------------------------------------------
// The real model

TEST(SafetensorsReal, Stories260K) {
  REQUIRE_SHARED("models/stories260K/model.safetensors");
  SafetensorsFile f(testing::shared_path("models/stories260K/model.safetensors"));
  std::vector<std::string> names = f.names();
  EXPECT_EQ(names.size(), 47u);  // 5 layers x 9 + embeddings + final norm (tied head)
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  ASSERT_TRUE(f.has("model.embed_tokens.weight"));
  TensorView emb = f.get("model.embed_tokens.weight");
  EXPECT_EQ(emb.dtype, "F32");
  EXPECT_EQ(emb.shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(emb.nbytes, 512u * 64 * 4);
  EXPECT_EQ(emb.numel(), 512 * 64);
  TensorView q = f.get("model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(q.shape, (std::vector<int64_t>{64, 64}));
  TensorView k = f.get("model.layers.0.self_attn.k_proj.weight");
  EXPECT_EQ(k.shape, (std::vector<int64_t>{32, 64}));  // 4 KV heads of dim 8
  EXPECT_EQ(f.get("model.layers.4.mlp.down_proj.weight").shape, (std::vector<int64_t>{64, 172}));
  EXPECT_EQ(f.get("model.norm.weight").shape, (std::vector<int64_t>{64}));
  EXPECT_FALSE(f.has("lm_head.weight"));
  for (const char* part :
       {"input_layernorm", "post_attention_layernorm", "self_attn.q_proj", "self_attn.k_proj",
        "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"})
    for (int l = 0; l < 5; ++l)
      EXPECT_TRUE(f.has("model.layers." + std::to_string(l) + "." + part + ".weight"))
          << l << " " << part;

  std::vector<float> w(static_cast<size_t>(emb.numel()));
  to_float32(emb, w.data());
  double sum_sq = 0;
  for (float x : w) {
    ASSERT_TRUE(std::isfinite(x));
    sum_sq += double(x) * x;
  }
  EXPECT_GT(sum_sq, 0);

  // The directory opens the same file.
  SafetensorsModel m(testing::shared_path("models/stories260K"));
  EXPECT_FALSE(m.sharded());
  EXPECT_EQ(m.names(), names);
  EXPECT_EQ(m.get("model.embed_tokens.weight").shape, emb.shape);
}

// ---------------------------------------------------------------------------
// Writing and reading back

struct Sample {
  std::vector<float> f32{1.0f, -2.5f, 3.25f, 0.0f, -0.0f, 1e-30f};
  std::vector<uint16_t> f16{0x3c00, 0xc100, 0x7bff, 0x0001, 0x7c00, 0x7e00};
  std::vector<uint16_t> bf16{0x3f80, 0xc020, 0x7f80, 0x0001};
  std::vector<int64_t> i64{1, -1, std::numeric_limits<int64_t>::max(), 0, 42, -7};
  std::vector<TensorData> tensors() const {
    return {
        {"z.f32", "F32", {2, 3}, f32.data(), f32.size() * 4},
        {"a.f16", "F16", {6}, f16.data(), f16.size() * 2},
        {"m.bf16", "BF16", {2, 1, 2}, bf16.data(), bf16.size() * 2},
        {"b.i64", "I64", {3, 2}, i64.data(), i64.size() * 8},
        {"empty", "F32", {0, 5}, nullptr, 0},
        {"scalar", "I64", {}, i64.data() + 4, 8},
    };
  }
};

void expect_same(const SafetensorsFile& f, const std::vector<TensorData>& ts) {
  EXPECT_EQ(f.size(), ts.size());
  for (const TensorData& t : ts) {
    ASSERT_TRUE(f.has(t.name)) << t.name;
    TensorView v = f.get(t.name);
    EXPECT_EQ(v.dtype, t.dtype) << t.name;
    EXPECT_EQ(v.shape, t.shape) << t.name;
    ASSERT_EQ(v.nbytes, t.nbytes) << t.name;
    if (t.nbytes) {
      EXPECT_EQ(bytes_of(v.data, v.nbytes), bytes_of(t.data, t.nbytes)) << t.name;
    }
  }
}

TEST(SafetensorsWrite, RoundTripExact) {
  TempDir dir;
  Sample s;
  std::string path = dir.file("m.safetensors");
  std::map<std::string, std::string> md{{"format", "pt"}, {"note", "h\u00e9llo \"quoted\"\n"}};
  write_safetensors(path, s.tensors(), md);
  SafetensorsFile f(path);
  expect_same(f, s.tensors());
  EXPECT_EQ(f.metadata(), md);
  EXPECT_EQ(f.names(),
            (std::vector<std::string>{"a.f16", "b.i64", "empty", "m.bf16", "scalar", "z.f32"}));

  // Layout: the data region starts at a multiple of 8; tensors sorted by
  // name, contiguous; the header is padded with spaces.
  std::string raw = testing::read_file(path);
  uint64_t n;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  std::string header = raw.substr(8, n);
  EXPECT_EQ(header.find_last_not_of(' '), header.rfind('}'));
  EXPECT_LT(header.find("__metadata__"), header.find("a.f16"));
  EXPECT_LT(header.find("a.f16"), header.find("b.i64"));
  EXPECT_LT(header.find("m.bf16"), header.find("z.f32"));
  nlohmann::json j = nlohmann::json::parse(header);
  EXPECT_EQ(j["a.f16"]["data_offsets"], nlohmann::json({0, 12}));
  EXPECT_EQ(j["b.i64"]["data_offsets"], nlohmann::json({12, 60}));
  uint64_t data_size = raw.size() - 8 - n;
  EXPECT_EQ(data_size, 12u + 48 + 0 + 8 + 8 + 24);

  // No temporary file is left behind; writing again replaces the file.
  write_safetensors(path, {s.tensors()[0]});
  SafetensorsFile g(path);
  EXPECT_EQ(g.names(), std::vector<std::string>{"z.f32"});
  EXPECT_TRUE(g.metadata().empty());
  EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{"m.safetensors"})
      << "temporary files left behind";
}

TEST(SafetensorsWrite, EmptyFileAndMove) {
  TempDir dir;
  std::string path = dir.file("e.safetensors");
  write_safetensors(path, {});
  SafetensorsFile f(path);
  EXPECT_EQ(f.size(), 0u);
  EXPECT_EQ(testing::read_file(path).size() % 8, 0u);

  Sample s;
  write_safetensors(path, s.tensors());
  SafetensorsFile a(path);
  TensorView before = a.get("z.f32");
  SafetensorsFile b(std::move(a));  // views stay valid across moves
  SafetensorsFile c(dir.file("e.safetensors"));
  c = std::move(b);
  EXPECT_EQ(bytes_of(before.data, before.nbytes), bytes_of(s.f32.data(), s.f32.size() * 4));
  expect_same(c, s.tensors());
}

TEST(SafetensorsWrite, InvalidArguments) {
  TempDir dir;
  std::string path = dir.file("x.safetensors");
  float x[4] = {};
  auto bad = [&](std::vector<TensorData> ts, const std::string& needle) {
    try {
      write_safetensors(path, ts);
      ADD_FAILURE() << "accepted: " << needle;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_FALSE(testing::exists(path));
  };
  bad({{"a", "F32", {4}, x, 12}}, "nbytes 12");
  bad({{"a", "F99", {4}, x, 16}}, "unknown dtype");
  bad({{"a", "F32", {-1}, x, 16}}, "negative");
  bad({{"a", "F32", {4}, x, 16}, {"a", "F32", {4}, x, 16}}, "twice");
  bad({{"", "F32", {4}, x, 16}}, "empty name");
  bad({{"__metadata__", "F32", {4}, x, 16}}, "reserved");
  bad({{"\xff", "F32", {4}, x, 16}}, "UTF-8");
  bad({{"a", "F32", {4}, nullptr, 16}}, "no data");
  EXPECT_THROW(write_sharded(dir.path(), {}, 0), std::invalid_argument);
}

TEST(SafetensorsWrite, ShardedRoundTrip) {
  TempDir dir;
  std::vector<std::vector<float>> bufs;
  for (int i = 0; i < 5; ++i) {
    bufs.emplace_back(250);
    for (int j = 0; j < 250; ++j) bufs.back()[j] = float(i * 1000 + j);
  }
  std::vector<uint16_t> small(10, 0x3c00);
  std::vector<TensorData> ts;
  for (int i = 0; i < 5; ++i)
    ts.push_back({"layer." + std::to_string(i) + ".w", "F32", {25, 10}, bufs[i].data(), 1000});
  ts.push_back({"bias", "BF16", {10}, small.data(), 20});
  std::string out = dir.file("ckpt");
  write_sharded(out, ts, 2500, {{"format", "pt"}});
  // 1000+1000 | 1000+1000 | 1000+20
  EXPECT_TRUE(testing::exists(out + "/model-00001-of-00003.safetensors"));
  EXPECT_TRUE(testing::exists(out + "/model-00002-of-00003.safetensors"));
  EXPECT_TRUE(testing::exists(out + "/model-00003-of-00003.safetensors"));
  EXPECT_TRUE(testing::exists(out + "/model.safetensors.index.json"));
  EXPECT_FALSE(testing::exists(out + "/model.safetensors"));

  SafetensorsModel m(out);
  EXPECT_TRUE(m.sharded());
  EXPECT_EQ(m.files().size(), 3u);
  EXPECT_EQ(m.size(), ts.size());
  for (const TensorData& t : ts) {
    ASSERT_TRUE(m.has(t.name));
    TensorView v = m.get(t.name);
    EXPECT_EQ(v.dtype, t.dtype);
    EXPECT_EQ(v.shape, t.shape);
    EXPECT_EQ(bytes_of(v.data, v.nbytes), bytes_of(t.data, t.nbytes));
  }
  EXPECT_EQ(m.metadata().at("format"), "pt");
  EXPECT_EQ(m.metadata().at("total_size"), "5020");
  EXPECT_EQ(SafetensorsFile(out + "/model-00002-of-00003.safetensors").metadata().at("format"),
            "pt");
  // The index file opens directly too.
  EXPECT_EQ(SafetensorsModel(out + "/model.safetensors.index.json").names(), m.names());
  EXPECT_THROW(m.get("nope"), InputError);

  // A tensor larger than the limit gets a shard of its own.
  std::string out2 = dir.file("big");
  write_sharded(out2, ts, 900);
  EXPECT_TRUE(testing::exists(out2 + "/model-00006-of-00006.safetensors"));
  EXPECT_EQ(SafetensorsModel(out2).size(), ts.size());

  // Small enough: one model.safetensors, and the old index goes away.
  write_sharded(out, ts, 1 << 20);
  EXPECT_TRUE(testing::exists(out + "/model.safetensors"));
  EXPECT_FALSE(testing::exists(out + "/model.safetensors.index.json"));
  SafetensorsModel single(out);
  EXPECT_FALSE(single.sharded());
  EXPECT_EQ(single.names(), m.names());
  // And back to shards: the single file goes away.
  write_sharded(out, ts, 2500);
  EXPECT_FALSE(testing::exists(out + "/model.safetensors"));
  EXPECT_TRUE(SafetensorsModel(out).sharded());
}

// ---------------------------------------------------------------------------
// Malformed files: every case names the file and what is wrong.

TEST(SafetensorsBad, LengthAndHeader) {
  expect_input_error("abc", {"3 bytes", "shorter than"});
  expect_input_error(std::string("\x10\0\0\0\0\0\0\0{}", 10), {"header length 16", "exceeds"});
  std::string huge(8, '\0');
  uint64_t n = ~0ull;
  std::memcpy(huge.data(), &n, 8);
  expect_input_error(huge + "{}", {"header length 18446744073709551615"});
  expect_input_error(st_bytes("{\"a\":"), {"not valid JSON", "byte offset"});
  expect_input_error(st_bytes(""), {"not valid JSON"});
  expect_input_error(st_bytes("[1,2]"), {"not a JSON object", "array"});
  expect_input_error(
      st_bytes("{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}"), {"nested"});
  expect_input_error(st_bytes("{\"a\":\"\xff\"}"), {"not valid JSON"});
  // A number beyond double range: nlohmann throws out_of_range, not parse_error
  // (found by fuzz_safetensors).
  expect_input_error(st_bytes("{\"a\":1e999}"), {"not valid JSON", "number overflow"});
  // A header of a JSON object with trailing spaces and nothing else is fine.
  TempDir dir;
  testing::write_file(dir.file("ok"), st_bytes("{}      "));
  EXPECT_EQ(SafetensorsFile(dir.file("ok")).size(), 0u);
}

TEST(SafetensorsBad, HeaderOverLimit) {
  // A sparse file of 101 MB whose header length is 100 MB + 1.
  TempDir dir;
  std::string path = dir.file("big.safetensors");
  uint64_t n = 100ull * 1000 * 1000 + 1;
  std::string head(8, '\0');
  std::memcpy(head.data(), &n, 8);
  testing::write_file(path, head + "{");
  ASSERT_EQ(::truncate(path.c_str(), 101ll * 1000 * 1000), 0);
  try {
    SafetensorsFile f(path);
    ADD_FAILURE();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("limit"), std::string::npos) << e.what();
  }
}

TEST(SafetensorsBad, TensorEntries) {
  std::string d16(16, '\0');
  auto one = [&](const std::string& body) { return st_bytes("{\"w\":" + body + "}", d16); };
  expect_input_error(one("[]"), {"tensor 'w'", "expected an object"});
  expect_input_error(one("{\"shape\":[2],\"data_offsets\":[0,8]}"), {"'w'", "no \"dtype\""});
  expect_input_error(one("{\"dtype\":5,\"shape\":[2],\"data_offsets\":[0,8]}"),
                     {"'w'", "not a string"});
  expect_input_error(one("{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}"),
                     {"'w'", "unknown dtype 'F33'"});
  expect_input_error(one("{\"dtype\":\"F32\",\"data_offsets\":[0,8]}"), {"'w'", "no \"shape\""});
  expect_input_error(one("{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}"),
                     {"'w'", "not an array"});
  expect_input_error(one("{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}"),
                     {"'w'", "-2", "non-negative integer"});
  expect_input_error(one("{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}"),
                     {"'w'", "non-negative integer"});
  expect_input_error(one("{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}"),
                     {"'w'", "non-negative integer"});
  expect_input_error(one("{\"dtype\":\"F32\",\"shape\":[true],\"data_offsets\":[0,8]}"),
                     {"'w'", "non-negative integer"});
  expect_input_error(
      one("{\"dtype\":\"F32\",\"shape\":[18446744073709551615],\"data_offsets\":[0,8]}"),
      {"'w'", "non-negative integer"});
  expect_input_error(
      one("{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}"),
      {"'w'", "overflows"});
  expect_input_error(
      one("{\"dtype\":\"I64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}"),
      {"'w'", "overflows"});
  expect_input_error(one("{\"dtype\":\"F32\",\"shape\":[2]}"), {"'w'", "no \"data_offsets\""});
  expect_input_error(one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}"),
                     {"'w'", "two non-negative integers"});
  expect_input_error(one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":8}"),
                     {"'w'", "two non-negative integers"});
  expect_input_error(one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}"),
                     {"'w'", "two non-negative integers"});
  expect_input_error(one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}"),
                     {"'w'", "begin 8 is after end 0"});
  expect_input_error(one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}"),
                     {"'w'", "end 24", "past the end", "16 bytes"});
  expect_input_error(one("{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,8]}"),
                     {"'w'", "span 8 bytes", "need 16"});
  expect_input_error(one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}"),
                     {"'w'", "need 8"});
}

TEST(SafetensorsBad, OverlapDuplicatesMetadata) {
  std::string d32(32, '\0');
  expect_input_error(st_bytes("{" + entry("a", 0) + "," + entry("b", 4) + "}", d32),
                     {"'a' [0, 8)", "'b' [4, 12)", "overlap"});
  expect_input_error(
      st_bytes("{" + entry("b", 16) + "," + entry("a", 0) + "," + entry("c", 20) + "}", d32),
      {"'b'", "'c'", "overlap"});
  expect_input_error(st_bytes("{" + entry("a", 0) + "," + entry("a", 8) + "}", d32),
                     {"'a'", "twice", "duplicate"});
  expect_input_error(
      st_bytes("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}",
               d32),
      {"'dtype'", "twice"});
  expect_input_error(st_bytes("{\"__metadata__\":[1]}"), {"__metadata__", "not an object"});
  expect_input_error(st_bytes("{\"__metadata__\":{\"k\":1}}"), {"__metadata__", "'k'", "string"});

  // Adjacent, gapped and empty tensors are fine; unknown fields are ignored.
  TempDir dir;
  testing::write_file(dir.file("ok"),
                      st_bytes("{" + entry("a", 0) + "," + entry("b", 8) + "," + entry("c", 24) +
                                   ",\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4],"
                                   "\"extra\":1},\"__metadata__\":null}",
                               d32));
  SafetensorsFile f(dir.file("ok"));
  EXPECT_EQ(f.size(), 4u);
  EXPECT_EQ(f.get("e").nbytes, 0u);
  EXPECT_TRUE(f.metadata().empty());
  try {
    f.get("missing");
    ADD_FAILURE();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("no tensor named 'missing'"), std::string::npos);
  }
}

TEST(SafetensorsBad, FilesAndDirectories) {
  TempDir dir;
  EXPECT_THROW(SafetensorsFile(dir.file("absent")), InputError);
  EXPECT_THROW(SafetensorsFile(dir.path()), InputError);  // a directory
  try {
    SafetensorsModel m(dir.path());
    ADD_FAILURE();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("neither"), std::string::npos) << e.what();
  }
}

TEST(SafetensorsBad, Index) {
  TempDir dir;
  float x[2] = {1, 2};
  write_safetensors(dir.file("s1.safetensors"), {{"a", "F32", {2}, x, 8}});
  auto bad_index = [&](const std::string& text, std::vector<std::string> needles) {
    std::string path = dir.file("model.safetensors.index.json");
    testing::write_file(path, text);
    try {
      SafetensorsModel m(dir.path());
      ADD_FAILURE() << text;
    } catch (const InputError& e) {
      for (const std::string& n : needles)
        EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
    }
  };
  bad_index("{\"weight_map\":{\"a\":\"../s1.safetensors\"}}", {"index.json", "plain file name"});
  bad_index("{\"weight_map\":{\"a\":\"/etc/passwd\"}}", {"plain file name"});
  bad_index("{\"weight_map\":{\"a\":\"..\"}}", {"plain file name"});
  bad_index("{\"weight_map\":{\"a\":\"s1.safetensors\\u0000x\"}}", {"plain file name"});
  bad_index("{\"weight_map\":{\"b\":\"s1.safetensors\"}}", {"'b'", "no such tensor"});
  bad_index("{\"weight_map\":{\"a\":\"s2.safetensors\"}}", {"s2.safetensors", "cannot open"});
  bad_index("{\"weight_map\":{\"a\":3}}", {"not a string"});
  bad_index("{\"metadata\":{}}", {"weight_map"});
  bad_index("{\"weight_map\":{\"a\":\"s1.safetensors\",\"a\":\"s1.safetensors\"}}", {"twice"});
  bad_index("{\"weight_map\":", {"not valid JSON"});
  bad_index("[]", {"not a JSON object"});

  testing::write_file(
      dir.file("model.safetensors.index.json"),
      "{\"metadata\":{\"total_size\":8},\"weight_map\":{\"a\":\"s1.safetensors\"}}");
  SafetensorsModel m(dir.path());
  EXPECT_EQ(m.names(), std::vector<std::string>{"a"});
  EXPECT_EQ(m.metadata().at("total_size"), "8");
  float y[2];
  to_float32(m.get("a"), y);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], 2.0f);
}

// ---------------------------------------------------------------------------
// Conversions

TEST(SafetensorsConvert, F16KnownValues) {
  EXPECT_EQ(f16_to_float(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_float(0xc100), -2.5f);
  EXPECT_EQ(f16_to_float(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_float(0x0001), std::ldexp(1.0f, -24));     // smallest subnormal
  EXPECT_EQ(f16_to_float(0x03ff), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(f16_to_float(0x0400), std::ldexp(1.0f, -14));     // smallest normal
  EXPECT_EQ(f16_to_float(0x8000), -0.0f);
  EXPECT_TRUE(std::signbit(f16_to_float(0x8000)));
  EXPECT_EQ(f16_to_float(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_to_float(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16_to_float(0x7e00)));
  EXPECT_TRUE(std::isnan(f16_to_float(0x7c01)));

  EXPECT_EQ(float_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(float_to_f16(-2.5f), 0xc100);
  EXPECT_EQ(float_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(float_to_f16(65520.0f), 0x7c00);  // the tie rounds to even: inf
  EXPECT_EQ(float_to_f16(1e10f), 0x7c00);
  EXPECT_EQ(float_to_f16(-1e10f), 0xfc00);
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie -> even (0)
  EXPECT_EQ(float_to_f16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(float_to_f16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 ulp: tie -> even (2)
  EXPECT_EQ(float_to_f16(-std::ldexp(1.0f, -26)), 0x8000);
  EXPECT_EQ(float_to_f16(std::ldexp(1023.5f, -24)), 0x0400);          // rounds up into the normals
  EXPECT_EQ(float_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie -> even
  EXPECT_EQ(float_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie -> even
  EXPECT_EQ(float_to_f16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3c01);
  EXPECT_EQ(float_to_f16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(float_to_f16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(std::nanf("")))));
  // A NaN whose payload is only in the low bits stays a NaN.
  EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(std::bit_cast<float>(0x7f800001u)))));

  // Every finite F16 and both infinities survive float and back.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = f16_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_f16(f), h) << std::hex << h;
  }
#if defined(__FLT16_MAX__)
  // Against the compiler's own conversion on many floats.
  uint32_t state = 12345;
  for (int i = 0; i < 200000; ++i) {
    state = state * 1664525u + 1013904223u;
    float f = std::bit_cast<float>(state);
    if (std::isnan(f)) continue;
    _Float16 ref = static_cast<_Float16>(f);
    ASSERT_EQ(float_to_f16(f), std::bit_cast<uint16_t>(ref)) << f;
  }
#endif
}

TEST(SafetensorsConvert, BF16KnownValues) {
  EXPECT_EQ(bf16_to_float(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_float(0xc020), -2.5f);
  EXPECT_EQ(bf16_to_float(0x0001), std::ldexp(1.0f, -133));  // smallest subnormal
  EXPECT_EQ(bf16_to_float(0x7f80), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(bf16_to_float(0x7fc0)));
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16(-2.5f), 0xc020);
  EXPECT_EQ(float_to_bf16(65504.0f), 0x4780);  // 65504 is not a BF16: rounds to 65536
  EXPECT_EQ(bf16_to_float(0x4780), 65536.0f);
  EXPECT_EQ(float_to_bf16(std::ldexp(1.0f, -133)), 0x0001);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up to inf
  EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);        // tie -> even
  EXPECT_EQ(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);    // tie -> even
  EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 0x3f81);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::nanf("")))));
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::bit_cast<float>(0x7f800001u)))));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = bf16_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_bf16(f), h) << std::hex << h;
  }
}

TEST(SafetensorsConvert, TensorsToAndFromFloat) {
  std::vector<float> in{1.0f, -2.5f, 65504.0f, std::ldexp(1.0f, -24), 0.1f};
  for (const char* dt : {"F32", "F16", "BF16"}) {
    std::vector<uint8_t> buf(in.size() * dtype_size(dt) + 1);
    from_float32(in.data(), in.size(), dt, buf.data() + 1);  // unaligned on purpose
    TensorView v{dt, {static_cast<int64_t>(in.size())}, buf.data() + 1, buf.size() - 1};
    std::vector<float> out(in.size());
    to_float32(v, out.data());
    for (size_t i = 0; i < in.size(); ++i) {
      float expect = std::string(dt) == "F32"   ? in[i]
                     : std::string(dt) == "F16" ? f16_to_float(float_to_f16(in[i]))
                                                : bf16_to_float(float_to_bf16(in[i]));
      EXPECT_EQ(out[i], expect) << dt << " " << i;
    }
  }
  EXPECT_EQ(dtype_size("F32"), 4u);
  EXPECT_EQ(dtype_size("BF16"), 2u);
  EXPECT_EQ(dtype_size("BOOL"), 1u);
  EXPECT_EQ(dtype_size("I64"), 8u);
  EXPECT_EQ(dtype_size("f32"), 0u);
  double d[2] = {1.5, -1e300};
  TensorView f64{"F64", {2}, reinterpret_cast<const uint8_t*>(d), 16};
  float o[2];
  to_float32(f64, o);
  EXPECT_EQ(o[0], 1.5f);
  EXPECT_EQ(o[1], -std::numeric_limits<float>::infinity());
  TensorView i32{"I32", {1}, reinterpret_cast<const uint8_t*>(d), 4};
  EXPECT_THROW(to_float32(i32, o), std::invalid_argument);
  EXPECT_THROW(from_float32(o, 1, "I8", d), std::invalid_argument);
}

}  // namespace
}  // namespace tracelm
