#!/usr/bin/env bash
# Installs the Debian packages the tests need (headless Chromium for the browser tests, the libraries Qt's
# offscreen platform loads, a font, iproute2 for the test host in a network namespace, PostgreSQL for the tests
# that run the broker and vendor on it). Acts only as root on a Debian-like system; otherwise says what is missing.
set -euo pipefail
pkgs=(chromium libegl1 libxkbcommon0 libgl1 libfontconfig1 libdbus-1-3 fonts-dejavu-core iproute2 postgresql)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "note: missing system packages (${missing[*]}); install them with apt to run the browser and Qt tests" >&2
fi
