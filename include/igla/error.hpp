// igla: error type shared by every module.
#pragma once

#include <stdexcept>
#include <string>

namespace igla {

// Every failure the user can cause (bad file, unknown word, bad argument) is an igla::Error whose
// message names what and where. The CLI prints it and exits non-zero.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace igla
