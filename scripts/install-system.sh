#!/usr/bin/env bash
# Installs the Debian packages a local desktop needs (Xvfb, openbox, LibreOffice, Chromium, …).
# Idempotent: does nothing when every package is already installed.
set -euo pipefail
PACKAGES=(
  xvfb xauth xdotool x11-utils wmctrl openbox dbus dbus-x11 at-spi2-core
  libreoffice-calc libreoffice-impress libreoffice-writer libreoffice-gtk3
  fonts-liberation2 fonts-dejavu-core chromium xclip mousepad xterm gnome-terminal pcmanfm
  python3-tk  # pyautogui (OSWorld's task code) needs tkinter on a Debian python
  socat psmisc unzip git xsel bc  # programs OSWorld's task steps run (socat relays Chrome's port)
  libglib2.0-bin gnome-shell-common gnome-settings-daemon-common  # gsettings, gio, GNOME's schemas
  vlc gimp thunderbird picard desktop-file-utils  # the apps of OSWorld's other domains
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Chromium under the name `chrome` (a hard link: the process is named after it), as OSWorld's
# tasks run and stop Google Chrome (cua.desktop.apps.chrome_shim).
CHROMIUM=/usr/lib/chromium
[ "$CHROMIUM/chrome" -ef "$CHROMIUM/chromium" ] || $SUDO ln -f "$CHROMIUM/chromium" "$CHROMIUM/chrome"
