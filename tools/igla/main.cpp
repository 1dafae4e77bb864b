// igla: ternary word embeddings — the command-line front end. Each command lives in its own
// cmd_*.cpp file and registers itself.
#include <fmt/format.h>

#include <csignal>
#include <filesystem>
#include <new>
#include <stdexcept>

#include "cli.hpp"
#include "igla/error.hpp"
#include "igla/temp_files.hpp"

namespace {

// SIGINT / SIGTERM while an index is being written: remove its temporary file, then die of the
// signal as before (SA_RESETHAND restored the default action; the re-raised signal is delivered
// when the handler returns).
void on_fatal_signal(int sig) {
  igla::remove_pending_temp_files();
  std::raise(sig);
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

int fail(const std::string& message) {
  fmt::print(stderr, "igla: error: {}\n", message);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  install_signal_handlers();
  CLI::App app{"igla: exact search over ternary (2-bit) word embeddings: nearest words, analogies, "
               "similarity, VSA bind/bundle.\nStart with `igla fetch-glove`, then e.g. `igla analogy man king woman`."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "igla 0.1.0");
  app.get_formatter()->column_width(34);
  igla::cli::register_all(app);
  // No raw C++ exception text reaches the user: the library's errors are written for people;
  // the standard library's are mapped to what they mean here.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints the message (or the help)
    return rc == 0 ? 0 : 2;      // usage errors exit 2
  } catch (const igla::cli::ExitCode& e) {
    return e.code;
  } catch (const igla::Error& e) {
    return fail(e.what());
  } catch (const std::bad_alloc&) {
    return fail("out of memory (the request needs more memory than this process can get: try a smaller -k, "
                "--candidates, --batch or index)");
  } catch (const std::length_error&) {
    return fail("out of memory (a size larger than any allocation was requested: try a smaller -k, --candidates, "
                "--batch or index)");
  } catch (const std::filesystem::filesystem_error& e) {
    return fail(fmt::format("{}{}{}", e.code().message(), e.path1().empty() ? "" : ": ", e.path1().string()));
  } catch (const std::exception& e) {
    return fail(fmt::format("internal error: {}", e.what()));
  }
  return 0;
}
