#!/usr/bin/env bash
# A Debian package of StreamForge: scripts/build-deb.sh [--arch amd64|arm64] (default: amd64).
# The binary goes to /usr/bin, the appliance config to /etc/streamforge (a conffile), the
# hardened unit is enabled and started, and postinst creates the `streamforge` system user that
# owns /var/lib/streamforge (see [package.metadata.deb] in Cargo.toml and debian/). Installs
# cargo-deb and help2man when missing (as root), and prints the path of the .deb as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "build-deb.sh: $*" >&2; exit 1; }
arch=amd64
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) [ $# -ge 2 ] || fail "--arch needs amd64 or arm64"; arch=$2; shift 2 ;;
    --arch=*) arch=${1#--arch=}; shift ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) fail "unknown argument: $1 (usage: build-deb.sh [--arch amd64|arm64])" ;;
  esac
done
case "$arch" in
  amd64|arm64) ;;
  *) fail "unsupported --arch $arch: amd64 or arm64" ;;
esac
[ "$(uname -m)" = x86_64 ] || fail "builds on an x86_64 machine (this one is $(uname -m))"

if ! command -v help2man >/dev/null; then
  [ "$(id -u)" = 0 ] || fail "needs help2man: sudo apt-get install help2man"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends help2man >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends help2man >/dev/null; }
fi
if ! cargo deb --version >/dev/null 2>&1; then
  cargo install --locked cargo-deb >&2 || fail "could not install cargo-deb"
fi

# The man page comes from --help, so it needs a binary that runs here: this machine's build.
cargo build --release --locked --bin streamforge >&2
version=$(target/release/streamforge --version | awk '{print $2}')
mkdir -p target/man
help2man --no-info --no-discard-stderr --version-string "$version" \
  --name "IPTV tuner appliance: an HDHomeRun tuner for Plex from Xtream Codes and XMLTV" \
  --include debian/streamforge.h2m target/release/streamforge | gzip -9n >target/man/streamforge.1.gz

if [ "$arch" = arm64 ]; then
  scripts/build-arm64.sh >&2
  # cargo-deb strips with the target's own strip.
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_STRIP=aarch64-linux-gnu-strip
  deb=$(cargo deb --no-build --strip --target aarch64-unknown-linux-gnu --output target/debian/ | tail -n1)
else
  deb=$(cargo deb --no-build --strip --output target/debian/ | tail -n1)
fi
[ -f "$deb" ] || fail "cargo deb did not say where the package went (got: $deb)"
echo "$deb"
