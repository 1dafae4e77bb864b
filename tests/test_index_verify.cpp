// Verification of .igla files: every byte a query can read is checked before it is used, and a
// file whose checksums were recomputed after an edit is still refused when a field is out of
// range or a section contradicts another. Also the output path rules of Index::save.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include "core/half.hpp"
#include "core/index_format.hpp"
#include "core/index_image.hpp"
#include "igla/error.hpp"
#include "igla/index.hpp"
#include "test_util.hpp"

using namespace igla;
using igla::testing_util::error_of;
using igla::testing_util::TempDir;

namespace {

using igla::testing_util::read_all;
using igla::testing_util::write_all;

// A file image that a test edits as a hostile tool would: fields changed, then the checksums
// recomputed so that only the semantic checks can catch the edit.
struct Image {
  std::vector<char> bytes;
  format::Header& header() { return *reinterpret_cast<format::Header*>(bytes.data()); }
  format::SectionEntry* table() { return reinterpret_cast<format::SectionEntry*>(bytes.data() + sizeof(format::Header)); }
  format::SectionEntry& entry(const char* tag) {
    for (uint32_t i = 0; i < header().n_sections; ++i)
      if (std::memcmp(table()[i].tag, tag, 4) == 0) return table()[i];
    throw std::runtime_error(std::string("no section ") + tag);
  }
  template <class T>
  T* at(const char* tag, size_t byte_offset = 0) {
    return reinterpret_cast<T*>(bytes.data() + entry(tag).offset + byte_offset);
  }
  void reseal_section(const char* tag) {
    auto& e = entry(tag);
    e.checksum = image::checksum(bytes.data() + e.offset, e.size);
    reseal_header();  // the table, checksums included, is covered by the header's checksum
  }
  void reseal_header() {
    header().meta_checksum = image::meta_checksum(header(), table(), header().n_sections);
  }
};

struct Fixture {
  TempDir dir;
  std::string good, bad;
  Image img;
  Fixture(const Index& ix) : good(dir.file("good.igla")), bad(dir.file("bad.igla")) {
    ix.save(good);
    img.bytes = read_all(good);
  }
  // Writes the edited image and returns the error of opening it ("" when it opens).
  std::string open_edited(const Image& edited) {
    write_all(bad, edited.bytes);
    return error_of([&] { Index::open(bad); });
  }
};

Index small_index(Quantization m, Rerank r, bool keep_float, uint32_t dims = 70) {
  return Index::build(igla::testing_util::random_vectors(61, dims, 11), {.method = m, .rerank = r}, keep_float);
}

}  // namespace

// Every byte of every section: one flipped bit is refused at open (F32V: when first read),
// with the path and the section named. The rerank rows and their scales are read a few rows per
// query, so before they were checked at open a flipped byte there silently changed answers.
TEST(IndexVerify, FlippedByteInAnySectionIsRefusedNamingPathAndSection) {
  struct Kind {
    Quantization m;
    Rerank r;
  };
  for (const Kind k : {Kind{Quantization::Seed, Rerank::None}, Kind{Quantization::Rotated, Rerank::Int8},
                       Kind{Quantization::Centered, Rerank::F16}}) {
    const Index built = small_index(k.m, k.r, true);
    Fixture f(built);
    for (const auto& s : built.sections()) {
      const uint64_t step = std::max<uint64_t>(1, s.size / 97);  // ~100 offsets per section, ends included
      for (uint64_t off = s.offset; off < s.offset + s.size; off += step) {
        for (uint64_t o : {off, s.offset + s.size - 1}) {
          Image e = f.img;
          e.bytes[o] ^= 0x40;
          if (s.tag == "F32V") {
            write_all(f.bad, e.bytes);
            const Index ix = Index::open(f.bad);  // not read at open: it is large and queries never read it
            const std::string err = error_of([&] { ix.float_vectors(); });
            EXPECT_NE(err.find("checksum mismatch in section F32V"), std::string::npos) << err;
            EXPECT_NE(err.find(f.bad), std::string::npos) << err;
            EXPECT_NE(error_of([&] { ix.verify_all(); }).find("F32V"), std::string::npos);
            EXPECT_NE(error_of([&] { ix.to_float_vectors(); }).find("F32V"), std::string::npos);
            continue;
          }
          const std::string err = f.open_edited(e);
          EXPECT_NE(err.find("checksum mismatch in section " + s.tag), std::string::npos)
              << s.tag << " byte " << o - s.offset << ": " << err;
          EXPECT_NE(err.find(f.bad), std::string::npos) << err;
        }
      }
    }
  }
}

TEST(IndexVerify, ThresholdFactorOutOfRangeIsRefusedDespiteAValidChecksum) {
  Fixture f(small_index(Quantization::Seed, Rerank::None, false));
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), -1.0f, -0.001f,
                    1e30f, 100.5f}) {
    Image e = f.img;
    e.header().threshold_factor = bad;
    e.reseal_header();
    const std::string err = f.open_edited(e);
    EXPECT_NE(err.find("threshold factor"), std::string::npos) << bad << ": " << err;
    EXPECT_NE(err.find(f.bad), std::string::npos) << err;
  }
  for (float ok : {0.0f, 0.5f, 100.0f}) {
    Image e = f.img;
    e.header().threshold_factor = ok;
    e.reseal_header();
    EXPECT_EQ(f.open_edited(e), "") << ok;
  }
}

TEST(IndexVerify, HeaderCountsAndFlagsOutOfRangeAreRefused) {
  Fixture f(small_index(Quantization::Seed, Rerank::None, false));
  auto edited = [&](auto edit) {
    Image e = f.img;
    edit(e);
    e.reseal_header();
    return f.open_edited(e);
  };
  EXPECT_NE(edited([](Image& e) { e.header().dims = 0; }).find("code dims"), std::string::npos);
  EXPECT_NE(edited([](Image& e) { e.header().dims = 1u << 30; }).find("code dims"), std::string::npos);
  EXPECT_NE(edited([](Image& e) { e.header().float_dims = 1u << 30; }).find("float dims"), std::string::npos);
  EXPECT_NE(edited([](Image& e) { e.header().n_words = uint64_t{1} << 40; }).find("words"), std::string::npos);
  EXPECT_NE(edited([](Image& e) { e.header().n_words = 60; }).find("corrupt"), std::string::npos);
  EXPECT_NE(edited([](Image& e) { e.header().quant_method = 7; }).find("quantization method"), std::string::npos);
  EXPECT_NE(edited([](Image& e) { e.header().reserved[3] = 1; }).find("reserved"), std::string::npos);
  EXPECT_NE(edited([](Image& e) { e.entry("CODE").flags = 2; }).find("section CODE: unknown flags"), std::string::npos);
  EXPECT_NE(edited([](Image& e) { std::memcpy(e.entry("NORM").tag, "CODE", 4); }).find("appears twice"),
            std::string::npos);
}

// The "lazy" flag once meant "checksum checked later": set on CODE by an edit, it must skip nothing.
TEST(IndexVerify, LazyFlagOnAQuerySectionSkipsNoChecksum) {
  Fixture f(small_index(Quantization::Rotated, Rerank::Int8, false));
  for (const char* tag : {"CODE", "NORM", "VOCB", "RRI8", "XFRM"}) {
    Image e = f.img;
    e.entry(tag).flags = format::kLazy;
    e.bytes[e.entry(tag).offset + e.entry(tag).size / 2] ^= 1;
    e.reseal_header();
    const std::string err = f.open_edited(e);
    EXPECT_NE(err.find(std::string("checksum mismatch in section ") + tag), std::string::npos) << tag << ": " << err;
  }
}

// Edits with the section checksum recomputed: the contents themselves are checked.
TEST(IndexVerify, InconsistentContentsAreRefusedDespiteValidChecksums) {
  const Index i8 = small_index(Quantization::Rotated, Rerank::Int8, true);
  Fixture f(i8);
  auto edited = [&](const char* tag, auto edit) {
    Image e = f.img;
    edit(e);
    e.reseal_section(tag);
    return f.open_edited(e);
  };
  // A sign bit without its non-zero bit (word 3, plane word 0): not a canonical trit.
  EXPECT_NE(edited("CODE", [&](Image& e) {
              uint64_t* g = e.at<uint64_t>("CODE");
              ASSERT_NE(~g[3], 0u);
              g[8 + 3] |= ~g[3] & (g[3] + 1);  // the lowest zero trit of word 3 gets a sign bit
            }).find("section CODE: word 3 is not a canonical ternary code"),
            std::string::npos);
  // A bit past the dims (a seed index of 70 dims: plane word 1, bits 6 and above).
  {
    Fixture seed(small_index(Quantization::Seed, Rerank::None, false));
    Image e = seed.img;
    e.at<uint64_t>("CODE")[16 + 5] |= uint64_t{1} << 63;
    e.reseal_section("CODE");
    EXPECT_NE(seed.open_edited(e).find("section CODE: word 5 is not a canonical ternary code"), std::string::npos);
  }
  // A trit in a padding word (61 words: lane 5 of block 7 is word 61).
  EXPECT_NE(edited("CODE", [&](Image& e) { e.at<uint64_t>("CODE")[7 * 2 * 16 + 5] = 1; }).find("word 61"),
            std::string::npos);
  // Norms that do not match the codes.
  EXPECT_NE(edited("NORM", [&](Image& e) { e.at<float>("NORM")[10] *= 1.5f; }).find("section NORM"), std::string::npos);
  EXPECT_NE(edited("NORM", [&](Image& e) { e.at<float>("NORM")[64 + 10] = std::nanf(""); }).find("section NORM"),
            std::string::npos);
  // Sorted ids out of order, or out of range.
  EXPECT_NE(edited("VSRT", [&](Image& e) { std::swap(e.at<uint32_t>("VSRT")[4], e.at<uint32_t>("VSRT")[5]); })
                .find("section VSRT"),
            std::string::npos);
  EXPECT_NE(edited("VSRT", [&](Image& e) { e.at<uint32_t>("VSRT")[0] = 61; }).find("out of range"), std::string::npos);
  // An empty word.
  EXPECT_NE(edited("VOCB", [&](Image& e) { e.at<uint32_t>("VOCB")[3] = e.at<uint32_t>("VOCB")[2]; }).find("VOCB"),
            std::string::npos);
  // int8 rerank scales: NaN, negative, infinite, zero.
  for (float s : {std::nanf(""), -0.01f, std::numeric_limits<float>::infinity(), 0.0f})
    EXPECT_NE(edited("RRI8", [&](Image& e) { e.at<float>("RRI8")[2] = s; }).find("section RRI8: scale 2"),
              std::string::npos)
        << s;
  // The transform: NaN in the rotation.
  EXPECT_NE(edited("XFRM", [&](Image& e) { e.at<float>("XFRM", sizeof(format::XfrmHeader))[2 * 70 + 5] = NAN; })
                .find("non-finite"),
            std::string::npos);
  // float32 vectors with NaN: refused when first read.
  {
    Image e = f.img;
    e.at<float>("F32V")[70 * 7 + 3] = std::numeric_limits<float>::infinity();
    e.reseal_section("F32V");
    write_all(f.bad, e.bytes);
    const Index ix = Index::open(f.bad);
    const std::string err = error_of([&] { ix.float_vectors(); });
    EXPECT_NE(err.find("F32V: the vector of word 7 ('w7') holds NaN or infinity"), std::string::npos) << err;
  }
}

TEST(IndexVerify, Float16RerankRowsWithNaNOrInfinityAreRefused) {
  Fixture f(small_index(Quantization::Centered, Rerank::F16, false, 40));
  for (float x : {std::nanf(""), std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
    Image e = f.img;
    e.at<uint16_t>("RF16")[40 * 9 + 17] = float_to_half(x);
    e.reseal_section("RF16");
    const std::string err = f.open_edited(e);
    EXPECT_NE(err.find("section RF16: the row of word 9 holds NaN or infinity"), std::string::npos) << err;
  }
}

TEST(IndexVerify, NonFiniteInputVectorsAreRefusedAtBuild) {
  for (float x : {std::nanf(""), std::numeric_limits<float>::infinity()}) {
    FloatVectors v = igla::testing_util::random_vectors(10, 8, 3);
    v.data[4 * 8 + 2] = x;
    const std::string err = error_of([&] { Index::build(v, {}, false); });
    EXPECT_NE(err.find("word 'w4' (entry 5)"), std::string::npos) << err;
    EXPECT_NE(err.find("in dim 3"), std::string::npos) << err;
  }
}

// The deferred F32V check runs once, whichever thread gets there first.
TEST(IndexVerify, FloatVectorsVerifiedOnceFromManyThreads) {
  Fixture f(small_index(Quantization::Seed, Rerank::None, true));
  const Index ix = Index::open(f.good);
  std::vector<std::thread> threads;
  std::vector<const float*> seen(8, nullptr);
  for (int t = 0; t < 8; ++t) threads.emplace_back([&, t] { seen[t] = ix.float_vectors().data(); });
  for (auto& t : threads) t.join();
  for (const float* p : seen) EXPECT_EQ(p, seen[0]);
  EXPECT_NE(seen[0], nullptr);
}

TEST(IndexVerify, SpecialFilesAreRefusedWithoutBlocking) {
  TempDir dir;
  const std::string fifo = dir.file("fifo.igla");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_NE(error_of([&] { Index::open(fifo); }).find("not a regular file"), std::string::npos);
  EXPECT_NE(error_of([&] { Index::open(dir.path.string()); }).find("not a regular file"), std::string::npos);
  EXPECT_NE(error_of([&] { Index::open("/dev/zero"); }).find("not a regular file"), std::string::npos);
}

TEST(IndexSave, RefusesSpecialOutputsAndFollowsSymlinksAtomically) {
  TempDir dir;
  const Index ix = small_index(Quantization::Seed, Rerank::None, false);
  // A FIFO, a directory: refused, left as they were.
  const std::string fifo = dir.file("fifo.igla");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_NE(error_of([&] { ix.save(fifo); }).find("is a FIFO, not a regular file"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  std::filesystem::create_directory(dir.file("d.igla"));
  EXPECT_NE(error_of([&] { ix.save(dir.file("d.igla")); }).find("is a directory"), std::string::npos);
  // A symlink to a regular file: the target is replaced, the link stays a link.
  write_all(dir.file("target.igla"), {'o', 'l', 'd'});
  std::filesystem::create_symlink("target.igla", dir.file("link.igla"));
  ix.save(dir.file("link.igla"));
  EXPECT_TRUE(std::filesystem::is_symlink(dir.file("link.igla")));
  EXPECT_EQ(Index::open(dir.file("target.igla")).size(), ix.size());
  // A symlink to a FIFO, a dangling symlink: refused.
  std::filesystem::create_symlink("fifo.igla", dir.file("to-fifo.igla"));
  EXPECT_NE(error_of([&] { ix.save(dir.file("to-fifo.igla")); }).find("which is a FIFO"), std::string::npos);
  std::filesystem::create_symlink("missing/x.igla", dir.file("dangling.igla"));
  EXPECT_NE(error_of([&] { ix.save(dir.file("dangling.igla")); }).find("symlink to a missing file"), std::string::npos);
  for (auto& e : std::filesystem::directory_iterator(dir.path))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

// A writer killed mid-write leaves OUT.tmp.XXXXXX; the next save to OUT removes it, unless a live
// writer still holds it (its flock).
TEST(IndexSave, RemovesStaleTemporaryFilesButNotLiveOnes) {
  TempDir dir;
  const Index ix = small_index(Quantization::Seed, Rerank::None, false);
  const std::string out = dir.file("o.igla");
  write_all(out + ".tmp.AbC123", {'x'});
  write_all(out + ".tmp.live99", {'y'});
  write_all(dir.file("other.igla.tmp.AbC123"), {'z'});  // another output's: not ours to remove
  const int live = ::open((out + ".tmp.live99").c_str(), O_RDONLY);
  ASSERT_GE(live, 0);
  ASSERT_EQ(flock(live, LOCK_EX), 0);
  ix.save(out);
  EXPECT_FALSE(std::filesystem::exists(out + ".tmp.AbC123"));
  EXPECT_TRUE(std::filesystem::exists(out + ".tmp.live99"));
  EXPECT_TRUE(std::filesystem::exists(dir.file("other.igla.tmp.AbC123")));
  ::close(live);
  ix.save(out);
  EXPECT_FALSE(std::filesystem::exists(out + ".tmp.live99"));
}
