// igla Python module: the C++ half of igla.KeyedVectors (python/igla/keyed_vectors.py adds
// gensim's argument forms and evaluation on top). One immutable Engine over a shared index; every
// search releases the GIL, and any number of Python threads may call one object at once.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <vector>

#include "igla/engine.hpp"

namespace igla::py_binding {

namespace py = pybind11;

class KeyedVectorsCore {
 public:
  // Opens `path` and makes the searcher of `device` ("cpu", "cuda", or any registered backend).
  KeyedVectorsCore(const std::string& path, const std::string& device, int threads, size_t candidates, bool lower);

  const Engine& engine() const { return *engine_; }
  const Index& index() const { return engine_->index(); }
  size_t candidates() const { return candidates_; }
  const std::string& device() const { return device_; }

  // The params of one call: k, restrict_vocab (0: all), candidates (< 0: the object's default).
  SearchParams params(size_t k, size_t restrict_vocab = 0, long candidates = -1) const;

  size_t size() const { return index().size(); }
  bool contains(const std::string& word) const { return engine_->find(word).has_value(); }
  uint32_t id(const std::string& word) const { return engine_->id(word); }  // throws UnknownWord
  std::vector<uint32_t> ids(const std::vector<std::string>& words) const;

  // True for the float peer (device "float"): answers on the float32 vectors kept in the index,
  // similarity and doesnt_match included (Engine::cosine uses the rerank rows or the codes).
  bool exact() const { return exact_; }
  float similarity(uint32_t a, uint32_t b) const;
  std::string doesnt_match(const std::vector<std::string>& words) const;
  // gensim's most_similar over any mix of weighted words and float vectors (a vector counts with
  // its length, a word as its unit vector): one query of one term each, scores the cosine to the
  // combined direction.
  std::vector<WordHit> most_similar_terms(std::span<const uint32_t> ids, std::span<const float> id_w,
                                          std::span<const float> vecs, std::span<const float> vec_w,
                                          std::span<const uint32_t> exclude, const SearchParams& p) const;

  // Float vector of a word: the kept float32 (as built; unit length when `norm`), else the
  // rerank row (a unit vector). Throws Error when the index has neither.
  void float_vector(uint32_t id, bool norm, float* out) const;
  bool has_float_vectors() const { return index().has_float() || index().rerank() != Rerank::None; }

 private:
  std::shared_ptr<const Engine> engine_;
  std::string device_;
  size_t candidates_;
  bool exact_ = false;
};

// Adds igla._igla.KeyedVectorsBase to `m`.
void bind_keyed_vectors(py::module_& m);

}  // namespace igla::py_binding
