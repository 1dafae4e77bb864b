// The .igla file: round trip, and refusal of truncated, corrupted or foreign files.
#include <gtest/gtest.h>

#include <filesystem>
#include <cstring>
#include <fstream>

#include "igla/error.hpp"
#include "igla/index.hpp"
#include "test_util.hpp"

using namespace igla;
using igla::testing_util::TempDir;

namespace {

using igla::testing_util::read_all;
using igla::testing_util::write_all;
std::string open_error(const std::string& p) {
  try {
    Index::open(p);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Index, RoundTripKeepsEverything) {
  TempDir dir;
  const FloatVectors v = igla::testing_util::random_vectors(1003, 301, 5);
  const Index built = Index::build(v, {.threshold_factor = 0.4f}, true);
  built.save(dir.file("a.igla"));
  const Index ix = Index::open(dir.file("a.igla"));
  ASSERT_EQ(ix.size(), 1003u);
  ASSERT_EQ(ix.dims(), 301u);
  EXPECT_FLOAT_EQ(ix.quant().threshold_factor, 0.4f);
  for (size_t i = 0; i < ix.size(); i += 97) {
    EXPECT_EQ(ix.word(i), v.words[i]);
    EXPECT_EQ(ix.find(v.words[i]), i);
    EXPECT_EQ(ix.trits(i), built.trits(i));
    std::vector<int8_t> t(301);
    quantize_seed(v.row(i), 0.4f, t);
    EXPECT_EQ(ix.trits(i), t);
    EXPECT_FLOAT_EQ(ix.codes().norms[i], std::sqrt(float(count_nonzero(t))));
  }
  EXPECT_FALSE(ix.find("nope").has_value());
  ASSERT_TRUE(ix.has_float());
  const auto f = ix.float_vectors();
  EXPECT_TRUE(std::equal(f.begin(), f.end(), v.data.begin()));
  EXPECT_NO_THROW(ix.verify_all());
  // No temporary file is left next to the index.
  size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
}

TEST(Index, WithoutFloatSection) {
  TempDir dir;
  const Index built = Index::build(igla::testing_util::random_vectors(10, 8, 1), {}, false);
  built.save(dir.file("b.igla"));
  const Index ix = Index::open(dir.file("b.igla"));
  EXPECT_FALSE(ix.has_float());
  EXPECT_TRUE(ix.float_vectors().empty());
}

TEST(Index, DuplicateWordsAreRefused) {
  FloatVectors v = igla::testing_util::random_vectors(5, 4, 1);
  v.words[3] = v.words[1];
  try {
    Index::build(v, {}, false);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("duplicate word 'w1'"), std::string::npos) << e.what();
  }
}

TEST(Index, RefusesMissingTruncatedForeignAndNewerFiles) {
  TempDir dir;
  Index::build(igla::testing_util::random_vectors(100, 65, 2), {}, true).save(dir.file("ok.igla"));
  const auto bytes = read_all(dir.file("ok.igla"));

  EXPECT_NE(open_error(dir.file("missing.igla")).find("cannot open"), std::string::npos);

  for (size_t cut : {size_t{0}, size_t{10}, size_t{63}, size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
    write_all(dir.file("cut.igla"), {bytes.begin(), bytes.begin() + static_cast<long>(cut)});
    const std::string err = open_error(dir.file("cut.igla"));
    EXPECT_NE(err.find("truncated"), std::string::npos) << "cut at " << cut << ": " << err;
    EXPECT_NE(err.find("cut.igla"), std::string::npos) << err;
  }

  auto foreign = bytes;
  foreign[0] = 'X';
  write_all(dir.file("foreign.igla"), foreign);
  EXPECT_NE(open_error(dir.file("foreign.igla")).find("bad magic"), std::string::npos);

  auto newer = bytes;
  newer[8] = 99;  // version field
  write_all(dir.file("newer.igla"), newer);
  EXPECT_NE(open_error(dir.file("newer.igla")).find("unknown index format version 99"), std::string::npos);
}

TEST(Index, FlippedBytesAreRefused) {
  // Flip one byte in each region: header, table, each required section -> refused at open.
  // In the lazily checked float section -> refused when the floats are read or verified.
  TempDir dir;
  const Index built = Index::build(igla::testing_util::random_vectors(50, 70, 3), {}, true);
  built.save(dir.file("x.igla"));
  const auto bytes = read_all(dir.file("x.igla"));
  for (const auto& s : built.sections()) {
    for (uint64_t off : {s.offset, s.offset + s.size / 2, s.offset + s.size - 1}) {
      auto bad = bytes;
      bad[off] ^= 0x20;
      write_all(dir.file("bad.igla"), bad);
      if (s.tag == "F32V") {
        const Index ix = Index::open(dir.file("bad.igla"));
        EXPECT_THROW(ix.float_vectors(), Error);
        EXPECT_THROW(ix.verify_all(), Error);
      } else {
        const std::string err = open_error(dir.file("bad.igla"));
        EXPECT_NE(err.find("checksum mismatch in section " + s.tag), std::string::npos) << s.tag << " " << err;
      }
    }
  }
  for (uint64_t off = 8; off < bytes.size(); off += (off < 1024 ? 1 : 61)) {  // header, table, padding, data
    if (off >= built.sections().back().offset) break;  // the lazily checked float section: above
    auto bad = bytes;
    bad[off] ^= 0x01;
    write_all(dir.file("bad.igla"), bad);
    EXPECT_FALSE(open_error(dir.file("bad.igla")).empty()) << "offset " << off;
  }
}

TEST(Index, SuggestsCloseWords) {
  FloatVectors v = igla::testing_util::random_vectors(5, 4, 1);
  v.words = {"king", "queen", "kings", "kingdom", "cat"};
  const Index ix = Index::build(v, {}, false);
  const auto s = ix.suggest("kingg", 2);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0], "king");
  EXPECT_EQ(s[1], "kings");
}

namespace {
std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}
std::string string_of(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }
}  // namespace

TEST(Index, ExtraSectionsRoundTripAndReplace) {
  TempDir dir;
  const FloatVectors v = igla::testing_util::random_vectors(200, 33, 7);
  const Index built = Index::build(v, {.rerank = Rerank::Int8}, false);
  EXPECT_TRUE(built.extra_section("IVFC").empty());  // absent = empty
  const std::vector<ExtraSection> extra = {{"IVFC", bytes_of("centroids here")}, {"IVFL", bytes_of("lists")}};
  built.save(dir.file("e.igla"), extra);
  {
    const Index ix = Index::open(dir.file("e.igla"));
    EXPECT_EQ(string_of(ix.extra_section("IVFC")), "centroids here");
    EXPECT_EQ(string_of(ix.extra_section("IVFL")), "lists");
    EXPECT_EQ(reinterpret_cast<uintptr_t>(ix.extra_section("IVFL").data()) % 64, 0u);
    EXPECT_TRUE(ix.extra_section("IVFX").empty());
    EXPECT_TRUE(ix.extra_section("CODE").empty());  // core sections are not extra ones
    EXPECT_EQ(ix.size(), 200u);
    for (size_t i = 0; i < ix.size(); i += 17) EXPECT_EQ(ix.trits(i), built.trits(i));
    EXPECT_NO_THROW(ix.verify_all());
    // Replace one, keep the other, add a third; saving without extras keeps them all.
    const std::vector<ExtraSection> more = {{"IVFC", bytes_of("new centroids, longer than before")},
                                            {"Z", bytes_of("z")}};
    ix.save(dir.file("f.igla"), more);
    const Index jx = Index::open(dir.file("f.igla"));
    jx.save(dir.file("g.igla"));
    const Index kx = Index::open(dir.file("g.igla"));
    EXPECT_EQ(string_of(kx.extra_section("IVFC")), "new centroids, longer than before");
    EXPECT_EQ(string_of(kx.extra_section("IVFL")), "lists");
    EXPECT_EQ(string_of(kx.extra_section("Z")), "z");
    EXPECT_EQ(kx.sections().size(), built.sections().size() + 3);
  }
  // In memory, same result.
  const Index mem = built.with_extra_sections(extra);
  EXPECT_EQ(string_of(mem.extra_section("IVFL")), "lists");
  EXPECT_TRUE(mem.path().empty());
  // No temporary file is left behind.
  for (auto& e : std::filesystem::directory_iterator(dir.path))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

TEST(Index, ExtraSectionsCorruptByteRefusedAtOpen) {
  TempDir dir;
  const Index built = Index::build(igla::testing_util::random_vectors(40, 16, 8), {}, false);
  built.save(dir.file("e.igla"), std::vector<ExtraSection>{{"IVFC", bytes_of("0123456789abcdef")}});
  const auto bytes = read_all(dir.file("e.igla"));
  const Index ok = Index::open(dir.file("e.igla"));
  uint64_t off = 0;
  for (const auto& s : ok.sections())
    if (s.tag == "IVFC") off = s.offset;
  ASSERT_NE(off, 0u);
  for (uint64_t i = off; i < off + 16; ++i) {
    auto bad = bytes;
    bad[i] ^= 0x04;
    write_all(dir.file("bad.igla"), bad);
    const std::string err = open_error(dir.file("bad.igla"));
    EXPECT_NE(err.find("checksum mismatch in section IVFC"), std::string::npos) << err;
    EXPECT_NE(err.find("bad.igla"), std::string::npos) << err;
  }
}

TEST(Index, ExtraSectionsBadTagsRefusedBeforeWriting) {
  TempDir dir;
  const Index built = Index::build(igla::testing_util::random_vectors(10, 8, 9), {}, false);
  for (const char* tag : {"", "TOOLONG", "a b", "CODE", "RRI8", "\x01"}) {
    const std::string err = igla::testing_util::error_of(
        [&] { built.save(dir.file("t.igla"), std::vector<ExtraSection>{{tag, bytes_of("x")}}); });
    EXPECT_NE(err.find("extra section tag"), std::string::npos) << "'" << tag << "': " << err;
  }
  EXPECT_NE(igla::testing_util::error_of([&] {
              built.save(dir.file("t.igla"), std::vector<ExtraSection>{{"AB", bytes_of("x")}, {"AB", bytes_of("y")}});
            }).find("given twice"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.file("t.igla")));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path));
}

// Re-laying out a file to add an extra section copies the other sections with their stored
// checksums: a damaged (not yet verified) F32V must stay refused, not gain a matching checksum.
TEST(Index, ExtraSectionsDoNotLaunderDamagedFloatVectors) {
  TempDir dir;
  const Index built = Index::build(igla::testing_util::random_vectors(30, 12, 4), {}, true);
  built.save(dir.file("f.igla"));
  auto bytes = read_all(dir.file("f.igla"));
  for (const auto& s : built.sections())
    if (s.tag == "F32V") bytes[s.offset + 7] ^= 0x10;
  write_all(dir.file("bad.igla"), bytes);
  const Index bad = Index::open(dir.file("bad.igla"));  // F32V is checked on first use
  bad.save(dir.file("out.igla"), std::vector<ExtraSection>{{"IVFC", bytes_of("c")}});
  const Index out = Index::open(dir.file("out.igla"));
  EXPECT_EQ(string_of(out.extra_section("IVFC")), "c");
  EXPECT_NE(igla::testing_util::error_of([&] { out.float_vectors(); }).find("checksum mismatch in section F32V"),
            std::string::npos);
  EXPECT_THROW(bad.with_extra_sections(std::vector<ExtraSection>{{"IVFC", bytes_of("c")}}).float_vectors(), Error);
}
