// igla: error type shared by every module.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace igla {

// Every failure the user can cause (bad file, unknown word, bad argument) is an igla::Error whose
// message names what and where. The CLI prints it and exits non-zero.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// An unknown word: the message names it and the closest known words, which are also kept apart
// (the server answers 404 with them, Python raises KeyError).
class UnknownWord : public Error {
 public:
  UnknownWord(std::string word, std::vector<std::string> closest);
  const std::string& word() const { return word_; }
  const std::vector<std::string>& closest() const { return closest_; }

 private:
  std::string word_;
  std::vector<std::string> closest_;
};

}  // namespace igla
