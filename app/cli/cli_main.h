#pragma once
// The whole of quantscope-cli but process setup: parses argv, runs the
// subcommand, returns the exit code (0 done, 1 failed mid-work, 2 refused input).
namespace qs::cli {

int cli_main(int argc, char** argv);

}  // namespace qs::cli
