#!/bin/sh
# Regenerates assets/clip.ts: the MPEG-TS clip the fake provider loops as every stream body.
# 10 s of 640x360 testsrc2 with a burnt-in timestamp, H.264 (GOP 25 = one keyframe a second at
# 25 fps) + AAC sine tone, PAT/PMT repeated, so any loop point a player joins at is playable soon.
# Needs Debian's ffmpeg (libx264, drawtext) and fonts-dejavu-core.
set -eu
cd "$(dirname "$0")/.."
font=/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=640x360:rate=25,drawtext=fontfile=$font:text='StreamForge %{pts\\:hms}':x=20:y=20:fontsize=28:fontcolor=white:box=1:boxcolor=black@0.6" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" \
  -t 10 -map 0:v -map 1:a \
  -c:v libx264 -preset veryfast -threads 1 -b:v 250k -maxrate 250k -bufsize 500k \
  -g 25 -keyint_min 25 -sc_threshold 0 -pix_fmt yuv420p \
  -c:a aac -b:a 64k -ac 2 \
  -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
  -f mpegts -mpegts_flags +resend_headers \
  assets/clip.ts

# assets/clip-other.ts: the same program shape from "another encoder", for backups: a 1.6 s GOP
# (so its keyframes fall elsewhere), 9.6 s (six whole GOPs: every loop starts at a keyframe),
# another picture and tone, its own service id and PIDs.
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "smptebars=size=640x360:rate=25,drawtext=fontfile=$font:text='BACKUP %{pts\\:hms}':x=20:y=300:fontsize=28:fontcolor=white:box=1:boxcolor=black@0.6" \
  -f lavfi -i "sine=frequency=660:sample_rate=48000" \
  -t 9.6 -map 0:v -map 1:a \
  -c:v libx264 -preset veryfast -threads 1 -b:v 250k -maxrate 250k -bufsize 500k \
  -g 40 -keyint_min 40 -sc_threshold 0 -pix_fmt yuv420p \
  -c:a aac -b:a 64k -ac 2 \
  -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
  -f mpegts -mpegts_flags +resend_headers \
  -mpegts_service_id 7 -mpegts_pmt_start_pid 0x0500 -mpegts_start_pid 0x0300 \
  assets/clip-other.ts

# assets/clip-hevc.ts: the main clip's layout (10 s, GOP 25, ffmpeg's default PIDs) with HEVC
# video: a backup of another codec on the same PIDs, the program-change case. x265 runs
# single-threaded so that the output is reproducible.
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=640x360:rate=25,drawtext=fontfile=$font:text='HEVC %{pts\\:hms}':x=20:y=20:fontsize=28:fontcolor=white:box=1:boxcolor=black@0.6" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" \
  -t 10 -map 0:v -map 1:a \
  -c:v libx265 -preset veryfast -b:v 250k -maxrate 250k -bufsize 500k -pix_fmt yuv420p \
  -x265-params "keyint=25:min-keyint=25:scenecut=0:open-gop=0:pools=none:frame-threads=1:log-level=error" \
  -c:a aac -b:a 64k -ac 2 \
  -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
  -f mpegts -mpegts_flags +resend_headers \
  assets/clip-hevc.ts

# assets/clip-720p.ts: a 1280x720 picture whose name carries no label (the tests' and demo's
# unlabelled HD stream): 4 s, GOP 25, kept small at 400 kbit/s.
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=1280x720:rate=25,drawtext=fontfile=$font:text='720p %{pts\\:hms}':x=20:y=20:fontsize=40:fontcolor=white:box=1:boxcolor=black@0.6" \
  -f lavfi -i "sine=frequency=550:sample_rate=48000" \
  -t 4 -map 0:v -map 1:a \
  -c:v libx264 -preset veryfast -threads 1 -b:v 400k -maxrate 400k -bufsize 800k \
  -g 25 -keyint_min 25 -sc_threshold 0 -pix_fmt yuv420p \
  -c:a aac -b:a 64k -ac 2 \
  -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
  -f mpegts -mpegts_flags +resend_headers \
  assets/clip-720p.ts
