// igla: ternary word embeddings — the command-line front end. Each command lives in its own
// cmd_*.cpp file and registers itself.
#include <fmt/format.h>

#include "cli.hpp"
#include "igla/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"igla: exact search over ternary (2-bit) word embeddings: nearest words, analogies, "
               "similarity, VSA bind/bundle.\nStart with `igla fetch-glove`, then e.g. `igla analogy man king woman`."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "igla 0.1.0");
  app.get_formatter()->column_width(34);
  igla::cli::register_all(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints the message (or the help)
    return rc == 0 ? 0 : 2;      // usage errors exit 2
  } catch (const igla::cli::ExitCode& e) {
    return e.code;
  } catch (const igla::Error& e) {
    fmt::print(stderr, "igla: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "igla: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
