#!/usr/bin/env bash
# The package checks CI runs: builds the arm64 binary and both .debs, runs lintian on them
# (errors and warnings fail), and installs the amd64 one in a fresh Debian chroot (debootstrap).
# There it checks the user, directories, conffile and enabled unit, then does what an admin does
# on the box: the service runs as `streamforge`, root runs `streamforge account add`, `sync`,
# `epg add`, `map auto` against a demo provider, the running service picks the change up and
# relays MPEG-TS that ffprobe reads, nothing in the data dir is left owned by root, a plain user
# is told to use sudo, and remove keeps the data while purge deletes it. Run as root.
#
#   scripts/test-deb.sh            # everything
#   scripts/test-deb.sh --amd64    # only the amd64 package and its install test
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test-deb.sh: FAILED: $*" >&2; exit 1; }
step() { echo "== $*"; }
[ "$(id -u)" = 0 ] || fail "run as root (it builds a chroot)"

archs=(amd64 arm64)
[ "${1:-}" = --amd64 ] && archs=(amd64)

need=()
for tool in debootstrap:debootstrap lintian:lintian ffprobe:ffmpeg curl:curl; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

declare -A debs
for arch in "${archs[@]}"; do
  step "building the $arch package"
  debs[$arch]=$(scripts/build-deb.sh --arch "$arch" | tail -n1)
  echo "${debs[$arch]}"
  step "lintian on the $arch package"
  # Tags at error or warning level fail; info and pedantic ones are listed in README.
  lintian --fail-on error,warning --suppress-tags-from-file debian/lintian-ignored "${debs[$arch]}"
  [ "$(dpkg-deb --field "${debs[$arch]}" Architecture)" = "$arch" ] || fail "${debs[$arch]} is not $arch"
  # The ELF machine field: 0x3e is x86-64, 0xb7 AArch64.
  machine=$(dpkg-deb --fsys-tarfile "${debs[$arch]}" | tar -xO ./usr/bin/streamforge | od -An -tx2 -j18 -N2 | tr -d ' ')
  expected=$([ "$arch" = arm64 ] && echo 00b7 || echo 003e)
  [ "$machine" = "$expected" ] || fail "the $arch package's binary has ELF machine $machine"
done

work=target/deb-test
root=$work/root
cleanup() {
  [ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null || true
  [ -n "${demo_pid:-}" ] && kill "$demo_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  mountpoint -q "$root/proc" && umount "$root/proc" || true
}
trap cleanup EXIT
rm -rf "$work"
mkdir -p "$work"

step "a fresh Debian 12 (bookworm) chroot"
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
mount -t proc proc "$root/proc"
in_root() { chroot "$root" "$@"; }

step "installing the amd64 package"
cp "${debs[amd64]}" "$root/tmp/streamforge.deb"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /tmp/streamforge.deb >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "apt-get install of the package"; }
in_root streamforge --version
in_root getent passwd streamforge | grep -q ':/var/lib/streamforge:' || fail "no streamforge system user"
[ "$(stat -c '%U %a' "$root/var/lib/streamforge")" = "streamforge 700" ] ||
  fail "/var/lib/streamforge is $(stat -c '%U %a' "$root/var/lib/streamforge"), not streamforge 700"
in_root dpkg-query -W -f='${Conffiles}\n' streamforge | grep -q '/etc/streamforge/streamforge.toml' ||
  fail "/etc/streamforge/streamforge.toml is not a conffile"
[ -L "$root/etc/systemd/system/multi-user.target.wants/streamforge.service" ] || fail "the unit is not enabled"
[ -f "$root/usr/share/man/man1/streamforge.1.gz" ] || fail "no man page"

step "the service's user serves; root administers"
port=$((20000 + RANDOM % 20000))
in_root setpriv --reuid=streamforge --regid=streamforge --init-groups \
  env STREAMFORGE_CONFIG=/etc/streamforge/streamforge.toml \
  streamforge serve --no-discovery --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
serve_pid=$!
cargo build --release --locked --bin streamforge >&2
target/release/streamforge demo --data-dir "$work/demo" --listen 127.0.0.1:$((port + 1)) >"$work/demo.log" 2>&1 &
demo_pid=$!
for _ in $(seq 100); do
  grep -q 'its provider' "$work/demo.log" && break
  sleep 0.2
done
provider=$(grep -o 'its provider.*: http://[0-9.:]*' "$work/demo.log" | grep -o 'http://[0-9.:]*') ||
  fail "the demo did not say where its provider is: $(cat "$work/demo.log")"
echo demo | in_root streamforge account add box --url "$provider" --username demo --password-stdin
in_root streamforge sync
in_root streamforge epg add xtream:box
in_root streamforge map auto
root_owned=$(find "$root/var/lib/streamforge" ! -user streamforge | head -n 3)
[ -z "$root_owned" ] || fail "left in the data dir not owned by streamforge: $root_owned"

step "the running service sees the change"
for _ in $(seq 50); do
  curl -fsS "http://127.0.0.1:$port/lineup.json" | grep -q '"GuideNumber":"101"' && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/lineup.json" | grep -q '"GuideNumber":"101"' ||
  fail "the service never listed channel 101: $(cat "$work/serve.log")"
codecs=$(ffprobe -v error -read_intervals %+2 -show_entries stream=codec_name -of csv=p=0 \
  "http://127.0.0.1:$port/auto/v101" | sort -u | tr '\n' ' ')
[[ "$codecs" == *h264* ]] || fail "no H.264 from the service's relay (ffprobe: $codecs)"
echo "relayed: $codecs"

step "a plain user is told to use sudo"
if out=$(in_root setpriv --reuid=nobody --regid=nogroup --clear-groups streamforge account list 2>&1); then
  fail "a plain user read the data dir: $out"
fi
[[ "$out" == *"run this with sudo"* ]] || fail "unclear refusal: $out"
echo "$out"

kill "$serve_pid"
wait "$serve_pid" || true
serve_pid=
step "remove keeps the data; purge deletes it and the user"
in_root env DEBIAN_FRONTEND=noninteractive dpkg -r streamforge >/dev/null
[ -f "$root/var/lib/streamforge/streamforge.db" ] || fail "remove deleted the data"
in_root env DEBIAN_FRONTEND=noninteractive dpkg --purge streamforge >/dev/null
[ ! -e "$root/var/lib/streamforge" ] || fail "purge kept /var/lib/streamforge"
if in_root getent passwd streamforge >/dev/null; then fail "purge kept the streamforge user"; fi

echo "test-deb.sh: all package checks passed"
