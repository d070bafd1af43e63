#pragma once
// The temporary files and directories this process is writing (AtomicFile's
// and StagingDir's), so that none outlives it: a SIGTERM, SIGINT or SIGHUP
// removes them before the process dies of the signal, and a temporary left by
// a process that was killed outright (SIGKILL, a crash) is removed by the next
// QuantScope run that writes the same target (its name holds the writer's pid).
#include <string>

namespace qs {

// Installs the handlers for SIGTERM, SIGINT and SIGHUP (where their
// disposition is the default one: a shell's nohup stays in force). Call once
// at start-up; the handler removes what is registered, then dies of the signal
// as it would have.
void install_temp_cleanup();

// A temporary `path` being written (a directory: its entries are removed
// too, one level deep, as StagingDir writes them). Returns a slot for
// unregister_temp, or -1 when every slot is taken (the path is then just not
// cleaned up on a signal).
int register_temp(const std::string& path, bool directory);
void unregister_temp(int slot);

// The prefix of the temporaries written for `target` by this process:
// ".NAME.tmp-PID-" in the target's directory (mkstemp/mkdtemp add XXXXXX).
std::string temp_prefix_for(const std::string& target);
// Removes temporaries for `target` whose writer process is gone.
void remove_stale_temps(const std::string& target);

}  // namespace qs
