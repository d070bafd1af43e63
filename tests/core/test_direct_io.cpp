// Writes and reads past the page cache (AtomicFile::use_direct_io,
// DirectReader): the file holds exactly the bytes given, whatever their sizes
// and offsets against the 4 KiB alignment and the 8 MiB staging buffer, and
// the read-back returns any byte range of it.
#include <gtest/gtest.h>

#include <cstring>
#include <sys/stat.h>
#include <filesystem>
#include <random>
#include <vector>

#include "test_files.h"
#include "util/atomic_file.h"
#include "util/direct_read.h"

namespace {

std::vector<std::byte> random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> b(n);
  for (auto& v : b) v = static_cast<std::byte>(rng());
  return b;
}

// Pieces of awkward sizes: a header-like start, small and odd ones, one larger than the staging buffer.
const std::size_t kPieces[] = {1237, 1, 4096, 4095, 777777, (std::size_t{9} << 20) + 3, 32, 5000};

std::string write_pieces(const qs::test::TempDir& dir, const std::string& name, bool direct,
                         const std::vector<std::byte>& all) {
  const std::string path = dir.file(name);
  auto f = qs::AtomicFile::create(path);
  EXPECT_TRUE(f.ok());
  std::size_t at = 0;
  for (std::size_t k = 0; k < std::size(kPieces); ++k) {
    EXPECT_TRUE(f->write(all.data() + at, kPieces[k]).ok());
    at += kPieces[k];
    if (k == 0 && direct) {
      EXPECT_TRUE(f->use_direct_io()) << "this file system takes O_DIRECT (ext4 here); the fallback is tested below";
    }
  }
  EXPECT_TRUE(f->flush().ok());
  // Readable before commit, exactly as written.
  EXPECT_EQ(qs::test::read_bytes(f->temp_path()), std::string(reinterpret_cast<const char*>(all.data()), all.size()));
  EXPECT_TRUE(f->write(all.data(), 10).ok());  // plain writes after a flush go on at the end
  EXPECT_TRUE(f->commit().ok());
  return path;
}

TEST(DirectIo, AtomicFileHoldsExactlyTheBytesWrittenWithAndWithoutODirect) {
  qs::test::TempDir dir;
  std::size_t total = 0;
  for (std::size_t n : kPieces) total += n;
  const auto all = random_bytes(total, 1);
  std::string want(reinterpret_cast<const char*>(all.data()), all.size());
  want.append(reinterpret_cast<const char*>(all.data()), 10);
  EXPECT_EQ(qs::test::read_bytes(write_pieces(dir, "direct.bin", true, all)), want);
  EXPECT_EQ(qs::test::read_bytes(write_pieces(dir, "plain.bin", false, all)), want);
  EXPECT_EQ(std::filesystem::file_size(dir.file("direct.bin")), total + 10);
}

TEST(DirectIo, ReaderReturnsAnyRangeAndRefusesOnesPastTheEnd) {
  qs::test::TempDir dir;
  const auto all = random_bytes((std::size_t{3} << 20) + 1234, 2);
  qs::test::write_bytes(dir.file("f.bin"), std::string(reinterpret_cast<const char*>(all.data()), all.size()));
  auto r = qs::DirectReader::open(dir.file("f.bin"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  const std::pair<std::uint64_t, std::size_t> ranges[] = {
      {0, 1}, {1, 4095}, {4095, 2}, {12345, 1 << 20}, {all.size() - 7, 7}, {0, all.size()}, {100, 0}};
  for (const auto& [offset, size] : ranges) {
    auto got = r->read(offset, size);
    ASSERT_TRUE(got.ok()) << got.error().message;
    ASSERT_EQ(got->size(), size);
    EXPECT_EQ(std::memcmp(got->data(), all.data() + offset, size), 0) << offset << "+" << size;
  }
  auto past = r->read(all.size() - 3, 4);
  ASSERT_FALSE(past.ok());
  EXPECT_NE(past.error().message.find("f.bin: " + std::to_string(all.size() + 1) + " bytes expected, the file is shorter"),
            std::string::npos)
      << past.error().message;
}

}  // namespace

// The write policy every writer shares: only a regular file (or nothing) is
// replaced. A FIFO, a directory or a device in the target's place is refused
// at create(), before any temporary exists, and stays as it was.
TEST(AtomicFile, OnlyRegularFilesAreReplaced) {
  qs::test::TempDir dir;
  const std::string fifo = dir.file("fifo"), sub = dir.file("sub"), plain = dir.file("plain");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::filesystem::create_directory(sub);
  for (const std::string& target : {fifo, sub, std::string("/dev/null")}) {
    auto f = qs::AtomicFile::create(target);
    ASSERT_FALSE(f.ok()) << target;
    EXPECT_NE(f.error().message.find(target + ": not a regular file"), std::string::npos) << f.error().message;
  }
  EXPECT_TRUE(std::filesystem::is_fifo(fifo));
  EXPECT_TRUE(std::filesystem::is_directory(sub));
  EXPECT_TRUE(std::filesystem::is_character_file("/dev/null"));
  std::size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) entries += e.path().filename().string()[0] == '.';
  EXPECT_EQ(entries, 0u) << "no temporary left behind";
  // A regular file, or none, is written as always.
  for (int round = 0; round < 2; ++round) {
    auto f = qs::AtomicFile::create(plain);
    ASSERT_TRUE(f.ok()) << f.error().message;
    ASSERT_TRUE(f->write("ok", 2).ok());
    ASSERT_TRUE(f->commit().ok());
  }
  EXPECT_EQ(qs::test::read_bytes(plain), "ok");
}
