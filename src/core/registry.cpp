// make_searcher(): the backend registry, and the rerank stage added where the index has rows.
#include <algorithm>
#include <map>
#include <mutex>

#include "core/backends.hpp"
#include "cpu/thread_pool.hpp"
#include "igla/error.hpp"
#include "igla/index.hpp"

namespace igla {

namespace {

std::shared_ptr<const Searcher> cpu(std::shared_ptr<const Index> ix, const SearcherOptions& o) {
  return make_cpu_searcher(std::move(ix), o.cpu);
}
std::shared_ptr<const Searcher> cuda(std::shared_ptr<const Index> ix, const SearcherOptions& o) {
  return make_cuda_searcher(std::move(ix), o);
}
std::shared_ptr<const Searcher> flt(std::shared_ptr<const Index> ix, const SearcherOptions& o) {
  return make_float_searcher(std::move(ix), o.cpu);
}

struct Registry {
  std::mutex mu;
  // The built-in backends are listed here, not registered from their own files: a static
  // library drops object files that nothing references, registrars included.
  std::map<std::string, SearcherFactory> backends{{"cpu", cpu}, {"cuda", cuda}, {"float", flt}};
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

void register_backend(const std::string& name, SearcherFactory make) {
  if (name.empty() || !make) throw Error("register_backend: a backend needs a name and a factory");
  Registry& r = registry();
  std::lock_guard<std::mutex> lk(r.mu);
  r.backends[name] = make;
}

std::vector<std::string> backend_names() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lk(r.mu);
  std::vector<std::string> names;
  for (auto& [name, make] : r.backends) names.push_back(name);
  return names;
}

std::shared_ptr<const Searcher> make_searcher(std::shared_ptr<const Index> index, const SearcherOptions& opts) {
  if (!index) throw Error("make_searcher: no index");
  const std::string name = opts.backend.empty() ? "cpu" : opts.backend;
  SearcherFactory make = nullptr;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lk(r.mu);
    if (auto it = r.backends.find(name); it != r.backends.end()) make = it->second;
  }
  if (!make) {
    std::string known;
    for (const auto& n : backend_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error("unknown search backend '" + name + "' (known: " + known + ")");
  }
  if (opts.cpu.idle_spin >= 0) ThreadPool::shared().set_idle_spin(static_cast<uint32_t>(opts.cpu.idle_spin));
  std::shared_ptr<const Searcher> s = make(index, opts);
  // The float peer scores float32 vectors exactly: nothing to rerank.
  if (opts.rerank && name != "float" && index->rerank() != Rerank::None && !s->capabilities().reranks)
    s = make_rerank_stage(std::move(s), index, opts.cpu.threads);
  return s;
}

}  // namespace igla
