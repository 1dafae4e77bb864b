// Atomic file writes (temporary file + rename), the output path rules, and the registry of
// pending temporary files for signal handlers. See src/core/atomic_file.hpp.
#include "core/atomic_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "igla/error.hpp"
#include "igla/temp_files.hpp"

namespace igla {

namespace {

// The registry: fixed storage, so a signal handler reads it with no allocation and no lock.
constexpr int kSlots = 16;
constexpr size_t kPathMax = 4096;
char g_paths[kSlots][kPathMax];
std::atomic<int> g_state[kSlots];  // 0 free, 1 claimed, 2 pending (g_paths[i] may exist on disk)
static_assert(std::atomic<int>::is_always_lock_free);

// Claims a slot holding `tmpl` (an mkstemp template, filled in place); -1 when none is free or
// the path is too long (the file is then not removed on a signal, only by the next write).
int claim_slot(const std::string& tmpl) {
  if (tmpl.size() >= kPathMax) return -1;
  for (int i = 0; i < kSlots; ++i) {
    int expected = 0;
    if (g_state[i].compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
      std::memcpy(g_paths[i], tmpl.c_str(), tmpl.size() + 1);
      return i;
    }
  }
  return -1;
}

std::string errno_text(int e = errno) { return std::strerror(e); }

[[noreturn]] void fail(const std::string& path, const std::string& what) { throw Error(path + ": " + what); }

const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

// The file a write to `path` replaces (see the rules in atomic_file.hpp).
std::string resolve_target(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return path;
    fail(path, "cannot write there: " + errno_text());
  }
  if (S_ISREG(st.st_mode)) return path;
  if (!S_ISLNK(st.st_mode))
    fail(path, std::string("is ") + file_kind(st.st_mode) + ", not a regular file: refusing to replace it");
  char* real = ::realpath(path.c_str(), nullptr);
  if (!real) fail(path, "is a symlink to a missing file (" + errno_text() + "): refusing to write through it");
  std::string target(real);
  std::free(real);
  if (::stat(target.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    fail(path, "is a symlink to " + target + ", which is " + file_kind(st.st_mode) + ": refusing to replace it");
  return target;
}

// Removes TARGET.tmp.XXXXXX files that no live writer holds a lock on (left by a killed writer).
void remove_stale_temps(const std::string& target) {
  const std::filesystem::path t(target);
  const std::string dir = t.has_parent_path() ? t.parent_path().string() : std::string(".");
  const std::string prefix = t.filename().string() + ".tmp.";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name(e->d_name);
    if (name.size() != prefix.size() + 6 || name.substr(0, prefix.size()) != prefix) continue;
    const std::string p = dir + "/" + std::string(name);
    const int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::flock(fd, LOCK_EX | LOCK_NB) == 0) ::unlink(p.c_str());
    ::close(fd);
  }
  ::closedir(d);
}

}  // namespace

void remove_pending_temp_files() noexcept {
  for (int i = 0; i < kSlots; ++i)
    if (g_state[i].load(std::memory_order_acquire) == 2) ::unlink(g_paths[i]);
}

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  target_ = resolve_target(path);
  const std::filesystem::path t(target_);
  if (t.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(t.parent_path(), ec);
    if (ec) fail(path, "cannot create its directory " + t.parent_path().string() + ": " + ec.message());
  }
  remove_stale_temps(target_);
  std::string tmpl = target_ + ".tmp.XXXXXX";
  slot_ = claim_slot(tmpl);
  // Pending from before the file exists: a signal during mkstemp at worst unlinks nothing.
  if (slot_ >= 0) g_state[slot_].store(2, std::memory_order_release);
  fd_ = ::mkstemp(slot_ >= 0 ? g_paths[slot_] : tmpl.data());
  if (fd_ < 0) {
    const int e = errno;
    if (slot_ >= 0) g_state[slot_].store(0, std::memory_order_release);
    slot_ = -1;
    fail(path, "cannot create a temporary file next to it: " + errno_text(e));
  }
  tmp_ = slot_ >= 0 ? std::string(g_paths[slot_]) : tmpl;
  ::fcntl(fd_, F_SETFD, FD_CLOEXEC);
  ::flock(fd_, LOCK_EX);  // marks it live for remove_stale_temps of other writers
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
  if (slot_ >= 0) g_state[slot_].store(0, std::memory_order_release);
}

void AtomicFile::abandon(const std::string& why) {
  ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  tmp_.clear();
  if (slot_ >= 0) g_state[slot_].store(0, std::memory_order_release);
  slot_ = -1;
  fail(path_, why);
}

void AtomicFile::write(const void* data, size_t n) {
  if (fd_ < 0) fail(path_, "write after the file was committed or abandoned");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, std::min<size_t>(n, size_t{1} << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      abandon("write failed: " + errno_text());
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void AtomicFile::write_zeros(size_t n) {
  static const char zeros[4096] = {};
  while (n > 0) {
    const size_t k = std::min(n, sizeof zeros);
    write(zeros, k);
    n -= k;
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) fail(path_, "commit after the file was committed or abandoned");
  if (::fsync(fd_) != 0) abandon("fsync failed: " + errno_text());
  ::fchmod(fd_, 0644);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) abandon("close failed: " + errno_text());
  if (::rename(tmp_.c_str(), target_.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp_.c_str());
    tmp_.clear();
    fail(path_, "cannot rename the temporary file into place: " + errno_text(e));
  }
  tmp_.clear();
  if (slot_ >= 0) g_state[slot_].store(0, std::memory_order_release);
  slot_ = -1;
  // Make the rename itself durable.
  const std::filesystem::path t(target_);
  const std::string dir = t.has_parent_path() ? t.parent_path().string() : std::string(".");
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace igla
