"""`Desktop`: the one client of the control server, whichever backend runs the desktop."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Self

import httpx

from cua.actions import Action, ActionError
from cua.content.check import ContentError
from cua.desktop.api import ExecuteReport, Health, ResetReport, WindowInfo
from cua.desktop.waiting import WaitTimeout, wait_until
from cua.envspec import EnvSpec
from cua.records import SettleReport

UNIX = "unix:"  # a control server on a unix socket: "unix:/path/to/socket"


def http_client(base_url: str, token: str, timeout_s: float) -> httpx.Client:
    """A client of the control server at `base_url` (http://host:port or unix:/socket), sending
    the desktop's token with every request."""
    headers = {"Authorization": f"Bearer {token}"}
    if base_url.startswith(UNIX):
        transport = httpx.HTTPTransport(uds=base_url.removeprefix(UNIX))
        return httpx.Client(base_url="http://desktop", transport=transport, timeout=timeout_s,
                            headers=headers)
    return httpx.Client(base_url=base_url, timeout=timeout_s, headers=headers)


class DesktopError(RuntimeError):
    """The desktop refused a request or could not carry it out."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind


class AppError(DesktopError):
    """An app did not come up (no window in time, crashed)."""


class Desktop:
    """A live desktop behind its control server: reset, observe, act, move files, close."""

    def __init__(self, desktop_id: str, base_url: str, token: str, backend=None,
                 timeout_s: float = 120.0, network: bool = False, sudo: bool = False):
        self.id, self.base_url, self.backend = desktop_id, base_url, backend
        self.network = network  # whether it was started for envs whose apps need the network
        self.sudo = sudo  # whether it was started for envs whose user may become root
        self.http = http_client(base_url, token, timeout_s)
        self.spec: EnvSpec | None = None

    # -- Gymnasium-style lifecycle ----------------------------------------------------------------

    def reset(self, env: EnvSpec, content: list[Path] = (), files: list[str] = (),
              clear_home: bool = True) -> ResetReport:
        """Empty the desktop's home (unless `clear_home` is False: files put there for this
        reset), upload `content` to it and bring it up with `env`'s apps on it and on `files`
        (home-relative paths already on the desktop)."""
        if clear_home:
            self.clear_home()
        names = [self.upload(Path(path)) for path in content] + list(files)
        report = ResetReport.model_validate(self._call("POST", "/reset", json={
            "env": env.model_dump(mode="json"), "files": names}))
        self.spec = env
        return report

    def close(self) -> None:
        """Stop the desktop and everything it started."""
        self.http.close()
        if self.backend is not None:
            self.backend.stop(self.id)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    # -- observe and act --------------------------------------------------------------------------

    def screenshot_png(self) -> bytes:
        response = self.http.get("/screenshot")
        if response.status_code != 200:
            self._raise(response)
        return response.content

    def execute(self, actions: list[Action], settle: bool = True,
                observe: bool = False) -> ExecuteReport:
        """Run `actions`, each settling; with `observe` the report holds the screen after them."""
        body = {"actions": [a.model_dump(mode="json") for a in actions], "settle": settle,
                "observe": observe}
        return ExecuteReport.model_validate(self._call("POST", "/actions", json=body))

    def settle(self) -> SettleReport:
        """Wait until the screen and the desktop's processes are still (after set-up commands)."""
        return SettleReport.model_validate(self._call("POST", "/settle"))

    def windows(self) -> list[WindowInfo]:
        return [WindowInfo.model_validate(w) for w in self._call("GET", "/windows")]

    def activate(self, window_id: str) -> None:
        self._call("POST", f"/windows/{window_id}/activate")

    def health(self) -> Health:
        try:
            return Health.model_validate(self._call("GET", "/health", timeout=10))
        except (httpx.HTTPError, DesktopError):
            return Health(ok=False, x_server=False)

    # -- files and apps ---------------------------------------------------------------------------

    def clear_home(self) -> None:
        """Stop the apps and empty the home: nothing an earlier episode left stays behind."""
        self._call("DELETE", "/files")

    def upload(self, local: Path, remote: str | None = None) -> str:
        """Copy a local file into the desktop's home; returns its home-relative path."""
        remote = remote or local.name
        self._call("PUT", f"/files/{remote}", content=local.read_bytes())
        return remote

    def download(self, remote: str, local: Path | None = None) -> bytes:
        data = self.http.get(f"/files/{remote}")
        if data.status_code != 200:
            self._raise(data)
        if local is not None:
            local.write_bytes(data.content)
        return data.content

    def download_settled(self, remote: str, quiet_s: float = 1.0, timeout_s: float = 20.0) -> bytes:
        """The file's bytes once they have not changed for `quiet_s` (an app may still be
        writing it after the screen settles)."""
        deadline = time.monotonic() + timeout_s
        data, since = self.download(remote), time.monotonic()
        while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
            time.sleep(0.25)
            latest = self.download(remote)
            if latest != data:
                data, since = latest, time.monotonic()
        return data

    def open(self, remote: str, app: str | None = None) -> list[WindowInfo]:
        body = {"path": remote, "app": app}
        return [WindowInfo.model_validate(w) for w in self._call("POST", "/open", json=body)]

    def launch(self, app: str) -> list[WindowInfo]:
        return [WindowInfo.model_validate(w) for w in
                self._call("POST", "/launch", json={"app": app})]

    def wait_until_up(self, timeout_s: float = 30.0) -> None:
        """Block until the control server answers (it may still be importing)."""
        try:
            wait_until(self.answers, timeout_s, interval_s=0.05,
                       what=f"desktop {self.id} to answer at {self.base_url}")
        except WaitTimeout as exc:
            raise DesktopError("backend", str(exc)) from None

    def answers(self) -> bool:
        """Whether the control server answers now."""
        try:
            self.http.get("/health", timeout=2).raise_for_status()
        except httpx.HTTPError:
            return False
        return True

    # -- plumbing ---------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs):
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            self._raise(response)
        return response.json() if response.content else None

    @staticmethod
    def _raise(response: httpx.Response):
        try:
            body = response.json()
            kind, detail = body.get("error", "http"), body.get("detail", response.text)
        except ValueError:
            kind, detail = "http", response.text
        detail = detail if isinstance(detail, str) else str(detail)
        if kind == "action":
            raise ActionError(detail)
        if kind == "content":
            name, _, reason = detail.partition(": ")
            raise ContentError(Path(name), reason)
        if kind == "app":
            raise AppError(kind, detail)
        raise DesktopError(kind, f"{response.status_code}: {detail}")
