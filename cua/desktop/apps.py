"""How each app starts on a desktop, and the pre-seeded LibreOffice profile."""

from __future__ import annotations

import shutil
from pathlib import Path

from cua.envspec import EnvSpec

OFFICE_APPS = {"calc": "--calc", "impress": "--impress", "writer": "--writer"}

# wmctrl's WM_CLASS ("instance.Class") of each app's main window.
WINDOW_CLASS = {
    "calc": "libreoffice-calc",
    "impress": "libreoffice-impress",
    "writer": "libreoffice-writer",
    "browser": "chromium",
    "editor": "mousepad",
    "terminal": "xterm",
    "files": "pcmanfm",
}

# Debian's Chromium binary (/usr/bin/chromium is a launcher script that runs it), and the hard
# link to it that the set-up makes (scripts/install-system.sh, docker/Dockerfile) so that Chromium
# run as Chrome is a process named `chrome`, as OSWorld's `pkill chrome` expects.
CHROMIUM_BINARY = Path("/usr/lib/chromium/chromium")
CHROME_BINARY = CHROMIUM_BINARY.with_name("chrome")
CHROME_NAMES = ("google-chrome", "google-chrome-stable")
LIBREOFFICE_DEFAULT_PROFILE = Path(".config/libreoffice/4/user")  # under the home

# VLC without its first-run privacy question, with the HTTP interface that OSWorld's VM runs and
# desktop-env's VLC getters read (port 8080, password "password").
VLCRC = """[qt]
qt-privacy-ask=0
[core]
extraintf=http
metadata-network-access=0
[lua]
http-password=password
"""

# Chromium's window title before the page it was given has loaded.
BROWSER_BLANK_TITLES = ("Untitled", "New Tab", "about:blank")


def command(app: str, files: list[Path], home: Path, profile: Path) -> list[str]:
    """argv that starts `app` on `files` (office apps share one soffice process)."""
    if app in OFFICE_APPS:
        return ["soffice", f"-env:UserInstallation={profile.as_uri()}", "--norestore", "--nologo",
                "--nolockcheck", "--nodefault" if files else OFFICE_APPS[app],
                *map(str, files)]
    if app == "browser":
        return ["chromium", "--no-sandbox", "--test-type", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-features=Translate",
                "--password-store=basic", "--start-maximized", "--window-size=1920,1080",
                f"--user-data-dir={home / '.chromium'}",
                *[f.as_uri() for f in files]]
    if app == "editor":
        return ["mousepad", *map(str, files)]
    if app == "terminal":
        return ["xterm", "-fa", "DejaVu Sans Mono", "-fs", "11"]
    if app == "files":
        return ["pcmanfm", str(files[0] if files else home)]
    raise ValueError(f"unknown app {app!r}")


def program_stand_ins(bin_dir: Path) -> None:
    """Programs in `bin_dir` that OSWorld's tasks start by the names of apps cua desktops have
    stand-ins for: `google-chrome` runs Chromium as `chrome` (so `pkill chrome` ends it) with
    Chrome's profile folder, ~/.config/google-chrome, which OSWorld's getters read, and its
    accessibility tree on; `nautilus` opens its folder in PCManFM. Each only where its stand-in
    is installed."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    scripts = {}
    if binary := next((b for b in (CHROME_BINARY, CHROMIUM_BINARY) if b.is_file()), None):
        scripts |= dict.fromkeys(CHROME_NAMES, (
            "export ACCESSIBILITY_ENABLED=1\n"
            f"exec {binary} --no-sandbox --test-type --disable-gpu --disable-dev-shm-usage "
            "--no-first-run --no-default-browser-check --password-store=basic "
            '--start-maximized --user-data-dir="$HOME/.config/google-chrome" "$@"'))
    if shutil.which("pcmanfm"):
        scripts["nautilus"] = 'exec pcmanfm "$@"'
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)


def seed_home(home: Path, profile: Path, env: EnvSpec) -> None:
    """Write the settings that keep first-run noise away: LibreOffice's registry (in cua's
    profile and in the home's default one, which a plain `libreoffice` started by a task's
    command uses), VLC's, GTK's caret."""
    for user in (profile / "user", home / LIBREOFFICE_DEFAULT_PROFILE):
        user.mkdir(parents=True, exist_ok=True)
        (user / "registrymodifications.xcu").write_text(_registry(env))
        for leftover in ("backup", ".lock"):
            target = user / leftover
            if target.is_dir():
                for child in target.iterdir():
                    child.unlink()
            elif target.exists():
                target.unlink()
    vlc = home / ".config" / "vlc"
    vlc.mkdir(parents=True, exist_ok=True)
    (vlc / "vlcrc").write_text(VLCRC)
    gtk = home / ".config" / "gtk-3.0"
    gtk.mkdir(parents=True, exist_ok=True)
    (gtk / "settings.ini").write_text("[Settings]\ngtk-cursor-blink=false\n"
                                      "gtk-enable-animations=false\n")


def _item(path: str, prop: str, value: str) -> str:
    return (f'<item oor:path="{path}"><prop oor:name="{prop}" oor:op="fuse">'
            f'<value>{value}</value></prop></item>')


def _registry(env: EnvSpec) -> str:
    flag = lambda b: "true" if b else "false"
    items = [
        _item("/org.openoffice.Office.Common/Misc", "FirstRun", "false"),
        _item("/org.openoffice.Office.Common/Misc", "ShowTipOfTheDay", "false"),
        _item("/org.openoffice.Office.Common/Misc", "UseDocumentOOoLockFile", "false"),
        _item("/org.openoffice.Office.Common/Misc", "UseDocumentSystemFileLocking", "false"),
        _item("/org.openoffice.Setup/Product", "ooSetupLastVersion", "99.0"),
        _item("/org.openoffice.Setup/Product", "LastTimeGetInvolvedShown", "4102444800"),
        _item("/org.openoffice.Setup/Product", "LastTimeDonateShown", "4102444800"),
        _item("/org.openoffice.Setup/Office", "ooSetupInstCompleted", "true"),
        _item("/org.openoffice.Office.Recovery/AutoSave", "Enabled", "false"),
        _item("/org.openoffice.Office.Recovery/RecoveryInfo", "Enabled", "false"),
        _item("/org.openoffice.Office.Impress/Misc/NewDoc", "AutoPilot", "false"),
        _item("/org.openoffice.Office.Common/Save/Document", "WarnAlienFormat",
              flag(env.dialogs.keep_format == "show")),
        _item("/org.openoffice.Office.Common/Security/Scripting", "MacroSecurityLevel", "3"),
        _item("/org.openoffice.Office.Common/Security/Scripting", "DisableMacrosExecution",
              "true"),
        _item("/org.openoffice.Office.Calc/Input", "AutoInput", flag(env.office.autocomplete)),
        _item("/org.openoffice.Office.Common/AutoCorrect", "UseReplacementTable",
              flag(env.office.autocorrect)),
        _item("/org.openoffice.Office.Common/AutoCorrect", "TwoCapitalsAtStart",
              flag(env.office.autocorrect)),
        _item("/org.openoffice.Office.Common/AutoCorrect", "CapitalAtStartSentence",
              flag(env.office.autocorrect)),
        _item("/org.openoffice.Office.Common/Misc", "ShowLinkWarningDialog", "false"),
    ]
    body = "\n".join(items)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<oor:items xmlns:oor="http://openoffice.org/'
            '2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n' + body + "\n</oor:items>\n")
