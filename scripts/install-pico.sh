#!/usr/bin/env bash
# SVOX Pico (pico2wave), the cue model's third training voice family (python -m duplex.cue.train).
# It is in Debian's non-free section, which this machine's apt sources may not list: the three
# packages are downloaded from bookworm's non-free with a private source list and installed with
# dpkg, leaving the system's sources as they are. Nothing else in the project needs it.
set -euo pipefail

if command -v pico2wave >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-pico.sh: needs root (apt-get and dpkg)" >&2
    exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/debs"
echo "deb http://deb.debian.org/debian bookworm non-free" > "$work/sources.list"
apt=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-"
     -o "Dir::State::Lists=$work/lists" -o "APT::Get::List-Cleanup=0" -o "APT::Sandbox::User=root")
apt-get -q "${apt[@]}" update
apt-get install -y -q libpopt0
(cd "$work/debs" && apt-get -q "${apt[@]}" download libttspico0 libttspico-data libttspico-utils)
dpkg -i "$work"/debs/*.deb
pico2wave -l en-US -w "$work/check.wav" "ready" && echo "pico2wave installed"
