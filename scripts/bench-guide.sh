#!/usr/bin/env bash
# How much memory the guide takes: generates a large XMLTV source (default 200 MB, 500
# channels), ingests it with `streamforge epg add` and renders the EPG for every channel, each
# under /usr/bin/time, and prints peak resident set and wall time. Runs on a Pi too.
#
#   scripts/bench-guide.sh [MEGABYTES] [CHANNELS]
set -euo pipefail
cd "$(dirname "$0")/.."
megabytes=${1:-200}
channels=${2:-500}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet
bin=target/release/streamforge
python3 scripts/gen-xmltv.py --channels "$channels" --megabytes "$megabytes" -o "$work/guide.xml"
size=$(stat -c %s "$work/guide.xml")

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%M %e" -o "$work/time" "$@" >/dev/null
  read -r rss seconds <"$work/time"
  awk -v l="$label" -v r="$rss" -v s="$seconds" 'BEGIN { printf "%-34s peak RSS %6.1f MB   %6.2f s\n", l, r / 1024, s }'
}

echo "guide: $((size / 1000000)) MB, $channels channels"
export STREAMFORGE_DATA_DIR="$work/data" STREAMFORGE_CONFIG=/dev/null
measure "epg add (stream-parse $((size / 1000000)) MB)" "$bin" epg add "$work/guide.xml" --name bench
# Put every guide channel in the lineup (one stream each, straight into the database: no
# provider is needed to measure the guide), then re-render the EPG through the CLI.
python3 - "$work/data/streamforge.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("INSERT INTO accounts (name, server_url, username, password_encrypted, max_connections,"
           " created_at) VALUES ('bench', 'http://127.0.0.1:9', 'u', x'00', 1, '2026-01-01T00:00:00Z')")
account = db.execute("SELECT id FROM accounts WHERE name = 'bench'").fetchone()[0]
for (channel,) in db.execute("SELECT id FROM xmltv_channels").fetchall():
    cur = db.execute("INSERT INTO xtream_channels (account_id, stream_id, name, last_seen)"
                     " VALUES (?, ?, 'bench', '2026-01-01T00:00:00Z')", (account, channel))
    db.execute("INSERT INTO channel_mappings (xmltv_channel_id, xtream_channel_id, is_primary)"
               " VALUES (?, ?, 1)", (channel, cur.lastrowid))
db.commit()
PY
first=$("$bin" channels --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["number"])')
measure "render EPG ($channels channels)" "$bin" channel enable "$first"
ls -l "$work/data/epg.xml" "$work/data/epg.xml.gz" | awk '{print "  " $NF ": " int($5/1000000) " MB"}'
