#!/usr/bin/env bash
# System packages the test suite uses: a real MQTT broker, PortAudio + PulseAudio for device
# tests without a sound card, espeak-ng and flite for test speech (the cue model's smoke training
# speaks both), sox for audio checks, HAProxy in front of two duplex-serve processes
# (tests/test_haproxy.py).
# Installs through apt-get when it is present (as root, or with sudo); elsewhere says what is missing.
set -euo pipefail
PACKAGES=(espeak-ng flite mosquitto mosquitto-clients libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins sox haproxy)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && { echo "system packages: all present"; exit 0; }
if ! command -v apt-get >/dev/null; then
  echo "system packages missing (no apt-get here, install them yourself): ${missing[*]}" >&2
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing system packages: ${missing[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# mosquitto's (and haproxy's) package starts a service where systemd runs; tests start their own on free ports.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
