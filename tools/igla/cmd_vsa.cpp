// `igla vsa`: bind / bundle / permute word vectors and show the nearest words of the result.
#include <fmt/format.h>

#include "cli.hpp"
#include "igla/error.hpp"
#include "igla/vsa.hpp"

namespace igla::cli {
namespace {

enum class Op { Bind, Bundle, Permute };

void add_op(CLI::App* vsa, Op op) {
  struct Args {
    SearchOptions opt;
    std::vector<std::string> words;
    int64_t shift = 1;
    bool include_inputs = false;
  };
  auto a = std::make_shared<Args>();
  const char* name = op == Op::Bind ? "bind" : op == Op::Bundle ? "bundle" : "permute";
  const char* help = op == Op::Bind      ? "Elementwise product of the words' trits (binding); self-inverse where non-zero"
                     : op == Op::Bundle  ? "Majority vote of the words' trits (superposition), ties to 0"
                                         : "Cyclic shift of a word's trits by --shift positions";
  auto* cmd = vsa->add_subcommand(name, help);
  auto* w = cmd->add_option("words", a->words, op == Op::Permute ? "One word" : "Words")->required();
  if (op == Op::Bind) w->expected(2, 16);
  if (op == Op::Permute) {
    w->expected(1);
    cmd->add_option("--shift", a->shift, "Positions to rotate (negative: left)");
  }
  cmd->add_flag("--include-inputs", a->include_inputs, "Do not exclude the input words from the results");
  a->opt.add_to(cmd);
  cmd->callback([a, op] {
    const auto ixp = a->opt.open_index();
    const Index& ix = *ixp;
    const Engine e = a->opt.engine(ixp);
    std::vector<uint32_t> ids;
    std::vector<std::vector<int8_t>> vs;
    for (auto& word : a->words) ids.push_back(e.id(word)), vs.push_back(ix.trits(ids.back()));
    std::vector<int8_t> r;
    if (op == Op::Bind) {
      r = vs[0];
      for (size_t i = 1; i < vs.size(); ++i) r = vsa::bind(r, vs[i]);
    } else if (op == Op::Bundle) {
      std::vector<std::span<const int8_t>> spans(vs.begin(), vs.end());
      r = vsa::bundle(spans);
    } else {
      r = vsa::permute(vs[0], a->shift);
    }
    if (!a->opt.json)
      fmt::print(stderr, "{} of {} word(s): {} of {} trits non-zero\n", op == Op::Bind ? "bind" : op == Op::Bundle ? "bundle" : "permute",
                 ids.size(), count_nonzero(r), r.size());
    print_hits(e.nearest_trits(r, a->opt.params(), a->include_inputs ? std::span<const uint32_t>() : ids), a->opt.json);
  });
}

void add_vsa(CLI::App& app) {
  auto* vsa = app.add_subcommand("vsa", "Vector-symbolic algebra on word vectors: bind, bundle, permute; prints the "
                                        "nearest words of the result");
  vsa->require_subcommand(1);
  add_op(vsa, Op::Bind);
  add_op(vsa, Op::Bundle);
  add_op(vsa, Op::Permute);
}

const Command reg(40, add_vsa);

}  // namespace
}  // namespace igla::cli
