#include "util/staging_dir.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "util/atomic_file.h"
#include "util/temp_registry.h"

namespace qs {

namespace fs = std::filesystem;

Result<StagingDir> StagingDir::create(const fs::path& target) {
  std::error_code ec;
  if (fs::exists(target, ec) && !(fs::is_directory(target, ec) && fs::is_empty(target, ec)))
    return Error::invalid(target.string() + ": exists and is not an empty directory; choose a new output directory");
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  remove_stale_temps(target.string());  // of an earlier run that was killed outright
  std::string templ = temp_prefix_for(target.string()) + "XXXXXX";  // ".NAME.tmp-PID-XXXXXX"
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data()))
    return Error::io(target.string() + ": cannot create a temporary directory in " + parent.string() + ": " + std::strerror(errno));
  fs::permissions(buf.data(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                                  fs::perms::others_exec, ec);  // mkdtemp made it 0700
  StagingDir d(target, fs::path(buf.data()));
  d.slot_ = register_temp(d.temp_.string(), true);  // removed if a signal ends the process mid-export
  return d;
}

StagingDir::StagingDir(StagingDir&& o) noexcept : target_(std::move(o.target_)), temp_(std::move(o.temp_)), slot_(o.slot_) {
  o.temp_.clear();
  o.slot_ = -1;
}

StagingDir::~StagingDir() {
  std::error_code ec;
  if (!temp_.empty()) fs::remove_all(temp_, ec);
  unregister_temp(slot_);
}

Result<void> StagingDir::commit() {
  // Out of the signal cleanup first: a handler that opened the directory just
  // before the rename would empty the committed export through its descriptor.
  unregister_temp(slot_);
  slot_ = -1;
  std::error_code ec;
  fs::rename(temp_, target_, ec);  // replaces an empty directory, as rename(2) does
  if (ec) {
    slot_ = register_temp(temp_.string(), true);
    return Error::io(target_.string() + ": cannot move the export into place: " + ec.message());
  }
  temp_.clear();
  return {};
}

Result<void> write_text_file(const fs::path& path, const std::string& text) {
  auto f = AtomicFile::create(path.string());
  if (!f) return f.error();
  if (auto r = f->write(text.data(), text.size()); !r) return r;
  return f->commit();
}

}  // namespace qs
