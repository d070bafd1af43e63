# Shared by the scripts in .ci/: installs what is missing and builds.
# Sourced, not run. Works as root or through sudo on Debian 12.
set -euo pipefail
QS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QS_BUILD="${QS_BUILD:-$QS_ROOT/build}"

# Debian 12 packages the build, the app and the tests need.
QS_PACKAGES=(
  g++ cmake ninja-build pkg-config git
  qt6-base-dev libqt6opengl6-dev qt6-svg-dev libqcustomplot-dev
  libeigen3-dev libopenblas-dev libhdf5-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libbenchmark-dev libpcre2-dev libutf8proc-dev libsentencepiece-dev
  xvfb xauth fonts-dejavu-core
)

qs_install_deps() {
  local missing=()
  for p in "${QS_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0   # quiet when everything is there
  echo "QuantScope: installing ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "QuantScope: need root or sudo to install: ${missing[*]}" >&2; return 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# qs_build [TARGET...]: configure and build (everything when no target is named).
qs_build() {
  local jobs targets=()
  jobs="$(nproc 2>/dev/null || echo 2)"
  for t in "$@"; do targets+=(--target "$t"); done
  # shellcheck disable=SC2086  # QS_CMAKE_ARGS is a list of extra flags
  cmake -S "$QS_ROOT" -B "$QS_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release ${QS_CMAKE_ARGS:-} >/dev/null
  cmake --build "$QS_BUILD" -j "$jobs" "${targets[@]}"
}
