#!/usr/bin/env bash
# Installs the Debian packages the wallet and the tests need: the libraries Qt's xcb platform (a real X display)
# and offscreen platform load, Xvfb for the test that runs the wallet on a real X server, headless Chromium for the
# browser tests, a font. As root on a Debian-like system it installs what is missing; otherwise it names exactly
# what is missing and the command that installs it. `make demo`, `make test` and `.ci/run` run it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Qt's xcb platform: what PySide6's plugins/platforms/libqxcb.so, lib/libQt6XcbQpa.so.6 and
# plugins/xcbglintegrations/*.so link, by shared library. tests/test_system_deps.py checks this table against
# their ldd output (every library they load is provided by a package here or by a dependency of one).
declare -A qt_xcb=(
  [libxcb.so.1]=libxcb1 [libX11.so.6]=libx11-6 [libX11-xcb.so.1]=libx11-xcb1
  [libxcb-cursor.so.0]=libxcb-cursor0 [libxcb-icccm.so.4]=libxcb-icccm4 [libxcb-image.so.0]=libxcb-image0
  [libxcb-keysyms.so.1]=libxcb-keysyms1 [libxcb-randr.so.0]=libxcb-randr0
  [libxcb-render-util.so.0]=libxcb-render-util0 [libxcb-render.so.0]=libxcb-render0
  [libxcb-shape.so.0]=libxcb-shape0 [libxcb-shm.so.0]=libxcb-shm0 [libxcb-sync.so.1]=libxcb-sync1
  [libxcb-util.so.1]=libxcb-util1 [libxcb-xfixes.so.0]=libxcb-xfixes0 [libxcb-xkb.so.1]=libxcb-xkb1
  [libxcb-glx.so.0]=libxcb-glx0 [libxkbcommon.so.0]=libxkbcommon0 [libxkbcommon-x11.so.0]=libxkbcommon-x11-0
  [libGL.so.1]=libgl1 [libEGL.so.1]=libegl1 [libfontconfig.so.1]=libfontconfig1 [libfreetype.so.6]=libfreetype6
  [libglib-2.0.so.0]=libglib2.0-0 [libdbus-1.so.3]=libdbus-1-3 [libstdc++.so.6]=libstdc++6
)
# The rest: a font for Qt, Chromium for the browser tests and the demo, Xvfb (+ xauth for xvfb-run) and xwininfo
# for the test that runs the wallet on a real X server, iproute2 for the test host in a network namespace,
# postgresql for the broker and vendor tests (and `make demo DEMO_ARGS=--postgres`) that keep their state in it.
other=(fonts-dejavu-core chromium xvfb xauth x11-utils iproute2 postgresql)

mapfile -t pkgs < <(printf '%s\n' "${qt_xcb[@]}" "${other[@]}" | sort -u)
if [ "${1:-}" = "--list" ]; then printf '%s\n' "${pkgs[@]}"; exit 0; fi

if command -v dpkg-query >/dev/null; then
  missing=()
  for p in "${pkgs[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && exit 0
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "installing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "note: missing system packages: ${missing[*]}" >&2
    echo "      install them with: sudo apt-get install ${missing[*]}" >&2
    for p in "${missing[@]}"; do
      if printf '%s\n' "${qt_xcb[@]}" | grep -qx "$p"; then
        echo "      (without $p and the other Qt xcb libraries the wallet cannot open a window on an X display)" >&2
        break
      fi
    done
  fi
  exit 0
fi

# Not Debian: say which of the libraries Qt's xcb platform loads cannot be found (names from the table above).
plugin=$(ls .venv/lib/python3*/site-packages/PySide6/Qt/plugins/platforms/libqxcb.so 2>/dev/null | head -1 || true)
if [ -n "$plugin" ] && command -v ldd >/dev/null; then
  for lib in $(ldd "$plugin" | awk '/not found/ {print $1}' | sort -u); do
    echo "note: Qt's xcb platform needs $lib (Debian package ${qt_xcb[$lib]:-?}); install it with your package manager" >&2
  done
fi
