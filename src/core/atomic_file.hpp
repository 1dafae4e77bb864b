// igla internal: writing a file atomically: OUT.tmp.XXXXXX in OUT's directory, then rename(2).
//
// Output path rules (docs/RELIABILITY-index.md):
//   - a missing path or a regular file: replaced by the rename (readers that mapped the old file
//     keep its bytes: the old inode lives until they unmap it);
//   - a symlink to a regular file: its target is replaced (atomically, in the target's
//     directory); the link stays. A dangling symlink, or one to anything else, is refused;
//   - anything else (device node, FIFO, socket, directory): refused, nothing is written.
// The temporary file is registered for remove_pending_temp_files() (igla/temp_files.hpp) and
// flock'ed while written; stale temporary files of the same output that no live writer holds
// are removed first.
#pragma once

#include <cstddef>
#include <string>

namespace igla {

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);  // resolves the path, creates the temporary file
  ~AtomicFile();                                 // removes the temporary file unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  void write_zeros(size_t n);
  void commit();  // fsync, mode 0644, rename onto the target

  const std::string& target() const { return target_; }  // the file replaced (a symlink's target)

 private:
  [[noreturn]] void abandon(const std::string& why);
  std::string path_, target_, tmp_;
  int fd_ = -1;
  int slot_ = -1;  // in the registry of pending temporary files
};

}  // namespace igla
