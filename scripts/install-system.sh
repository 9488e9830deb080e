#!/usr/bin/env bash
# Installs the Debian packages a local desktop needs (Xvfb, openbox, LibreOffice, Chromium, …).
# Idempotent: does nothing when every package is already installed.
set -euo pipefail
PACKAGES=(
  xvfb xauth xdotool x11-utils wmctrl openbox dbus dbus-x11 at-spi2-core
  libreoffice-calc libreoffice-impress libreoffice-writer libreoffice-gtk3
  fonts-liberation2 fonts-dejavu-core chromium xclip mousepad xterm pcmanfm
  python3-tk  # pyautogui (OSWorld's task code) needs tkinter on a Debian python
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
