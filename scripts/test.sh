#!/usr/bin/env bash
# README's test command. The integration tests call real Debian tools; this installs the missing
# ones with apt-get when run as root (or says what to install and stops), then runs `cargo test`,
# whose summary lines CI reads. Arguments go to `cargo test`:
#
#   scripts/test.sh                 # every test
#   scripts/test.sh --test relay    # one integration test file
set -euo pipefail
cd "$(dirname "$0")/.."

# A command the tests (or the build) run, then the Debian 12 packages that provide it.
needs=(
  "ffprobe ffmpeg"                    # probes the test clip and the relayed streams
  "tv_validate_file xmltv-util"       # validates the rendered EPG against the XMLTV DTD
  "hdhomerun_config hdhomerun-config" # SiliconDust's client discovers the emulated tuner
  "chromium chromium"                 # a real browser renders the appliance's page
  "tidy tidy"                         # validates the page's HTML
  "cc gcc libc6-dev"                  # links, and builds the bundled SQLite and ring
)
missing=()
for need in "${needs[@]}"; do
  read -r command packages <<<"$need"
  if ! command -v "$command" >/dev/null 2>&1; then
    read -r -a list <<<"$packages"
    missing+=("${list[@]}")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "test.sh: the tests need these Debian packages: ${missing[*]}" >&2
    echo "install them as root, then run scripts/test.sh again:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "test.sh: cargo not found: install Rust 1.89 or newer with rustup (https://rustup.rs)" >&2
  exit 1
fi
exec cargo test "$@"
