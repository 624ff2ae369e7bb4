"""A real headless Chromium, driven over the DevTools protocol (one websocket, flat sessions).

Just what the report tests need: open a file:// page, evaluate JavaScript, take a
screenshot, and record what went wrong in the page (console errors, uncaught exceptions,
CSP and other browser log errors, JavaScript dialogs such as ``alert``).

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it). Without it the tests
fail with a message saying so, unless ``SPEECHMINE_SKIP_BROWSER=1`` (then they skip).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

#: flags that work as root in a container: no sandbox, no GPU, nothing fetched from outside
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--mute-audio", "--hide-scrollbars"]


def chromium_path() -> str:
    """The browser to use, or fail/skip with a clear message (see module doc)."""
    found = os.environ.get("SPEECHMINE_CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("SPEECHMINE_SKIP_BROWSER") == "1":
        pytest.skip("no chromium; SPEECHMINE_SKIP_BROWSER=1 skips the browser tests")
    pytest.fail("the report tests need a headless Chromium: apt-get install chromium "
                "(.ci/run does), or set SPEECHMINE_CHROMIUM=/path/to/chrome; "
                "SPEECHMINE_SKIP_BROWSER=1 skips them", pytrace=False)


def dump_dom(url: str, profile: Path, timeout: float = 60) -> str:
    """``chromium --headless --dump-dom URL``: the DOM after the page's scripts ran."""
    proc = subprocess.run([chromium_path(), *FLAGS, f"--user-data-dir={profile}",
                           "--dump-dom", url], capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class Browser:
    """One Chromium process with one page (tab) attached; use as a context manager."""

    def __init__(self, profile: Path, width: int = 1280, height: int = 2000,
                 timeout: float = 30) -> None:
        import websocket  # websocket-client (dev extra)

        self.timeout = timeout
        profile.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [chromium_path(), *FLAGS, f"--user-data-dir={profile}",
             "--remote-debugging-port=0", "--remote-allow-origins=*",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode(errors="replace")[-2000:] \
                    if self.proc.stderr else ""
                self.proc.kill()
                raise RuntimeError(f"chromium did not start its DevTools endpoint:\n{err}")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}",
                                              timeout=timeout, suppress_origin=True)
        self._id = 0
        self.events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:  # already gone is fine
            pass
        self.ws.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()

    # ---------------------------------------------------------------------------- protocol

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: bool = False) -> dict[str, Any]:
        """One command; events that arrive meanwhile are kept in :attr:`events`."""
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)
        raise TimeoutError(f"{method}: no reply in {self.timeout} s")

    def wait_event(self, method: str, timeout: float | None = None) -> dict[str, Any]:
        """The first event ``method`` (already received or to come)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = 0
        while True:
            for ev in self.events[seen:]:
                if ev.get("method") == method:
                    return ev
            seen = len(self.events)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} event")
            self.ws.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                self.events.append(json.loads(self.ws.recv()))
            except Exception as exc:  # a websocket timeout: the loop checks the deadline
                if "timed out" not in str(exc).lower():
                    raise
            finally:
                self.ws.settimeout(self.timeout)

    # ---------------------------------------------------------------------------- page

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=True)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str, timeout: float | None = None) -> Any:
        """Value of a JavaScript expression (promises awaited), as JSON."""
        reply = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": True,
                                               "timeout": (timeout or self.timeout) * 1000},
                          session=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression[:80]}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def screenshot(self) -> bytes:
        """PNG of the whole page."""
        data = self.send("Page.captureScreenshot", {"format": "png",
                                                    "captureBeyondViewport": True},
                         session=True)["data"]
        return base64.b64decode(data)

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, browser log errors (CSP, failed loads) and
        dialogs seen since the page was opened."""
        out = []
        for ev in self.events:
            method, params = ev.get("method"), ev.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error",
                                                                                "assert"):
                out.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                out.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append(f"log: {params['entry'].get('text')}")
            elif method == "Page.javascriptDialogOpening":
                out.append(f"dialog: {params.get('type')} {params.get('message')!r}")
        return out
