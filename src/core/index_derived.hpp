// igla internal: the cache behind Index::derived().
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "igla/index.hpp"

namespace igla {

struct Index::DerivedCache {
  std::mutex mu;  // held while a value is made: a second caller waits for it, nothing is made twice
  std::map<std::string, std::shared_ptr<const void>, std::less<>> values;
};

}  // namespace igla
