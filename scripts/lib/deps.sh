# Sourced by scripts/*.sh: make sure Debian packages are installed.
#   need_packages pkg...   installs the missing ones with apt-get (as root, or with
#                          sudo when it works without a password); otherwise names
#                          them and exits.
need_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo="sudo"
    else
      echo "typenet: missing Debian packages: ${missing[*]}" >&2
      echo "Install them with:  sudo apt-get install ${missing[*]}" >&2
      exit 1
    fi
  fi
  echo "typenet: installing ${missing[*]}" >&2
  local log
  log=$(mktemp "${TMPDIR:-/tmp}/typenet-apt.XXXXXX.log")
  # env: sudo resets the environment, so DEBIAN_FRONTEND is set inside it.
  if ! { $sudo apt-get update -qq &&
         $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    echo "typenet: apt-get failed; see $log" >&2
    tail -5 "$log" >&2
    exit 1
  fi
  rm -f "$log"
}

# The packages every build needs.
TYPENET_BUILD_PACKAGES=(g++ cmake ninja-build pkg-config libxtensor-dev libxsimd-dev doctest-dev libstb-dev zlib1g-dev)
# What downloading needs: curl only recommends the CA certificates, and
# --no-install-recommends leaves them out (every https download would then fail).
TYPENET_DOWNLOAD_PACKAGES=(ca-certificates curl unzip)
