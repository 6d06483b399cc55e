"""Open a local page in headless Chromium over the DevTools protocol (``--remote-debugging-
pipe``: JSON messages on file descriptors 3 and 4, no extra package), record every request
the page makes and every Content-Security-Policy violation, evaluate an expression in the
page and take a full-page screenshot.

    python tests/headless_chromium.py PAGE.html --screenshot OUT.png [--width 1280] [--max-height N]

Used by tests/test_leaderboard.py and to make the screenshot in docs/.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
         "--mute-audio", "--remote-debugging-pipe"]
# records CSP violations before any of the page's own content runs
WATCH = ("window.__violations = [];"
         "document.addEventListener('securitypolicyviolation', e => window.__violations.push("
         "e.blockedURI + ' (' + e.violatedDirective + ')'));")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageResult:
    requests: list[str] = field(default_factory=list)     # URLs the page asked for
    violations: list[str] = field(default_factory=list)   # CSP violations reported
    value: Any = None                                     # the evaluated expression
    screenshot: bytes = b""


class _Pipe:
    def __init__(self, binary: str, profile: str) -> None:
        to_chrome_r, self._to_chrome_w = os.pipe()
        self._from_chrome_r, from_chrome_w = os.pipe()

        def child_fds() -> None:        # the browser reads fd 3 and writes fd 4
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)   # the pipes may sit on 3/4
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)     # dup2 onto itself keeps close-on-exec
            os.set_inheritable(4, True)

        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=child_fds,
                                     close_fds=False)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_chrome_r], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome_r, 1 << 16)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60.0) -> dict:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        while True:
            ev = self._read_message(deadline)
            self.events.append(ev)
            if ev.get("method") == method:
                return ev

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome_w)
        os.close(self._from_chrome_r)


def open_page(page: Path, expression: str = "null", width: int = 1280,
              screenshot: bool = True, binary: str | None = None,
              max_height: int | None = None) -> PageResult:
    """Load ``page`` (a local file) and report what it requested, its CSP violations, the
    JSON value of ``expression`` evaluated after load, and a full-page PNG screenshot (its
    top ``max_height`` pixels when given). A browser that dies while starting (seen on an
    overloaded machine) is started once more."""
    try:
        return _open_page(page, expression, width, screenshot, binary, max_height)
    except (BrokenPipeError, RuntimeError, TimeoutError):
        return _open_page(page, expression, width, screenshot, binary, max_height)


def _open_page(page: Path, expression: str = "null", width: int = 1280,
              screenshot: bool = True, binary: str | None = None,
              max_height: int | None = None) -> PageResult:
    binary = binary or find_chromium()
    if not binary:
        raise FileNotFoundError("no Chromium found (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        pipe = _Pipe(binary, profile)
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
                "sessionId"]
            for domain in ("Page", "Network", "Runtime"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900,
                      "deviceScaleFactor": 1, "mobile": False}, session=session)
            pipe.send("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH}, session=session)
            pipe.send("Page.navigate", {"url": Path(page).resolve().as_uri()}, session=session)
            pipe.wait_event("Page.loadEventFired")
            time.sleep(0.3)   # late requests (none expected) would still be logged
            value = pipe.send("Runtime.evaluate", {"expression": f"JSON.stringify({expression})",
                                                   "returnByValue": True}, session=session)
            violations = pipe.send("Runtime.evaluate", {
                "expression": "JSON.stringify(window.__violations || [])",
                "returnByValue": True}, session=session)
            shot = b""
            if screenshot:
                m = pipe.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
                height = int(m["height"]) + 1
                pipe.send("Emulation.setDeviceMetricsOverride", {
                    "width": width, "height": min(height, max_height or height),
                    "deviceScaleFactor": 1, "mobile": False}, session=session)
                shot = base64.b64decode(pipe.send("Page.captureScreenshot", {
                    "format": "png", "captureBeyondViewport": max_height is None},
                    session=session)["data"])
            requests = [ev["params"]["request"]["url"] for ev in pipe.events
                        if ev.get("method") == "Network.requestWillBeSent"
                        and ev.get("sessionId") == session]
            return PageResult(requests=requests,
                              violations=json.loads(violations["result"]["value"]),
                              value=json.loads(value["result"].get("value", "null")),
                              screenshot=shot)
        finally:
            pipe.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("page", type=Path)
    ap.add_argument("--screenshot", type=Path, required=True)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--max-height", type=int, help="keep only the top of the page (pixels)")
    args = ap.parse_args(argv)
    res = open_page(args.page, width=args.width, max_height=args.max_height)
    args.screenshot.write_bytes(res.screenshot)
    outside = [u for u in res.requests if not u.startswith(("file:", "data:"))]
    print(f"requests: {len(res.requests)} ({len(outside)} leaving the page: {outside})\n"
          f"CSP violations: {res.violations}\n"
          f"screenshot: {args.screenshot} ({len(res.screenshot)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
