// quantscope-cli: the headless face of QuantScope, on the same core as the GUI.
#include "app/register_backends.h"
#include "cli_main.h"
#include "util/temp_registry.h"

int main(int argc, char** argv) {
  qs::register_optional_backends();
  qs::install_temp_cleanup();  // a SIGTERM/SIGINT/SIGHUP mid-write leaves no temporary behind
  return qs::cli::cli_main(argc, argv);
}
