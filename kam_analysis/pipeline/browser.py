"""Headless Chromium: screenshots and browser checks of report pages, network refused."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kam_analysis.pipeline.errors import ReportError

if TYPE_CHECKING:
    pass


_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary, or None (install with ``apt-get install chromium``)."""
    for candidate in ("/usr/bin/chromium", *_CHROMIUM_NAMES):
        found = shutil.which(candidate)
        if found:
            return found
    return None


_CONSOLE_LINE = re.compile(r":CONSOLE(?::|\()\d*\)?\]\s*(.*)$")


@dataclass
class PageCheck:
    """What headless Chromium saw when it loaded a report page."""

    console: list[str]
    """Console messages (``console.error``/``warn``/``log``, uncaught exceptions)."""
    dom: str
    """The document after load, serialised (empty when a screenshot was taken)."""
    error: str | None = None
    """Chromium could not load the page (timeout, crash); None when it did."""
    requests: list[str] = field(default_factory=list)
    """Network requests the page made (``GET http://...``, ``CONNECT host:443``): every
    one is refused by a local proxy, so a report can never reach the network, and
    listed here (a report should make none)."""
    browser_requests: list[str] = field(default_factory=list)
    """Requests Chromium makes on its own, for any page (component updates, sign-in):
    refused too, listed apart (:data:`CHROMIUM_OWN_HOSTS`)."""


CHROMIUM_OWN_HOSTS = (
    "update.googleapis.com",
    "accounts.google.com",
    "clients2.google.com",
    "clientservices.googleapis.com",
    "optimizationguide-pa.googleapis.com",
    "safebrowsing.googleapis.com",
    "redirector.gvt1.com",
    "edgedl.me.gvt1.com",
)
"""Hosts headless Chromium contacts whatever the page (seen on a blank page here)."""


def _request_host(request: str) -> str:
    target = request.split(" ", 1)[-1]
    target = target.split("://", 1)[-1]
    return target.split("/", 1)[0].rsplit(":", 1)[0].lower()


class _RefusingProxy:
    """A local HTTP proxy that refuses and records every request Chromium makes."""

    def __init__(self) -> None:
        import socketserver

        self.requests: list[str] = []
        requests = self.requests

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(8192).decode("latin-1").strip()
                if line:
                    requests.append(" ".join(line.split()[:2]))
                self.wfile.write(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> _RefusingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def browser_check(
    page: Path, *, chromium: str | None = None, screenshot: Path | None = None, timeout: int = 120
) -> PageCheck:
    """Load a page in headless Chromium; collect console messages and the DOM or a PNG.

    Parameters
    ----------
    page : Path
        An HTML file.
    chromium : str, optional
        Browser binary; default :func:`find_chromium`.
    screenshot : Path, optional
        Write a 1280 px wide PNG here instead of returning the DOM.
    timeout : int, default 120
        Seconds before Chromium is stopped.

    Returns
    -------
    PageCheck

    Raises
    ------
    ReportError
        When no Chromium is installed.
    """
    binary = chromium or find_chromium()
    if binary is None:
        raise ReportError("Chromium is not installed (apt-get install -y chromium)")
    profile = tempfile.mkdtemp(prefix="kam-chromium-")
    action = (
        [f"--screenshot={screenshot}", "--window-size=1280,2000"]
        if screenshot is not None
        else ["--dump-dom"]
    )
    try:
        with _RefusingProxy() as proxy:
            proc = _run_chromium(binary, profile, proxy.address, action, page, timeout)
            seen = list(proxy.requests)
    except subprocess.TimeoutExpired:
        return PageCheck([], "", f"Chromium timed out after {timeout} s")
    except OSError as err:
        return PageCheck([], "", f"Chromium failed to start: {err}")
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    console = [m.group(1) for line in proc.stderr.splitlines() if (m := _CONSOLE_LINE.search(line))]
    own = [r for r in seen if _request_host(r) in CHROMIUM_OWN_HOSTS]
    requests = [r for r in seen if r not in own]
    failed = proc.returncode != 0 or (screenshot is not None and not screenshot.is_file())
    if failed:
        tail = (proc.stderr or "").strip().splitlines()[-1:] or [""]
        error = f"Chromium exit {proc.returncode}: {tail[0][:200]}"
        return PageCheck(console, "", error, requests, own)
    dom = "" if screenshot is not None else proc.stdout
    return PageCheck(console, dom, None, requests, own)


def _run_chromium(
    binary: str, profile: str, proxy: str, action: list[str], page: Path, timeout: int
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={profile}",
            f"--proxy-server={proxy}",
            "--proxy-bypass-list=<-loopback>",  # loopback goes through the proxy too
            *action,
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        start_new_session=True,
    )
