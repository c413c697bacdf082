"""Headless Chromium for the tests and the README's screenshots.

A page is opened from a file, at a screen's size, with no network: measured (by a
script added to a copy of it, which writes what it found into the page that
``--dump-dom`` prints) or shot (``--screenshot``). Each Chromium runs in a process group
of its own with a profile folder of its own; both are gone when a call returns, whatever
happened.

Run as a script to take a screenshot for the docs::

    python tests/browser.py PAGE.html OUT.png 1280x720
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

#: The names Debian and others give the browser's program.
PROGRAMS: Final = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: A page this small opens in well under a second; this is for a machine under load.
TIMEOUT_S: Final = 30.0
#: The least size, in px on the screen, at which a projected text is read from the back
#: of a classroom: the page's 12 px texts drawn at 1280 px wide come out above it.
LEGIBLE_PX: Final = 11.0

#: Flags that keep Chromium off the network and out of the user's things.
_FLAGS: Final = (
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--mute-audio",
)

# Before anything of the page runs: every error and console.error it meets, kept.
_CATCH: Final = """<script>
window.__errors = [];
addEventListener("error", (e) => __errors.push("error: " + (e.message || e.target.outerHTML)),
                 true);
addEventListener("unhandledrejection", (e) => __errors.push("rejection: " + e.reason));
for (const level of ["error", "warn"]) {
  const was = console[level];
  console[level] = (...args) => { __errors.push(level + ": " + args.join(" ")); was(...args); };
}
</script>"""

# Once the page is laid out: what a script can tell of it at the screen's height, which
# comes in the address's fragment (the layout hangs on the width alone).
_MEASURE: Final = """<script>
addEventListener("load", () => {
  const H = Number(new URLSearchParams(location.hash.slice(1)).get("h"));
  const min = Number(new URLSearchParams(location.hash.slice(1)).get("min"));
  const out = {width: innerWidth, height: H, page_width: document.documentElement.scrollWidth,
               page_height: document.documentElement.scrollHeight, errors: __errors,
               overflowing: [], small: [], outside: [], overlapping: [], boxes: {}, texts: 0};
  const shown = (r) => r.width > 0 && r.height > 0;
  for (const el of document.body.querySelectorAll("*")) {
    if (el instanceof SVGElement || !el.clientWidth) continue;
    if (el.scrollWidth > el.clientWidth + 1)
      out.overflowing.push(el.tagName + ": " + el.textContent.trim().slice(0, 60));
  }
  for (const svg of document.querySelectorAll("svg")) {
    const box = svg.getBoundingClientRect();
    if (!shown(box)) continue;
    const scale = box.width / svg.viewBox.baseVal.width;
    out.boxes[svg.getAttribute("class")] = {top: box.top + scrollY, bottom: box.bottom + scrollY,
                                            scale: scale};
    const texts = [];
    for (const text of svg.querySelectorAll("text")) {
      const r = text.getBoundingClientRect();
      if (!shown(r)) continue;
      out.texts += 1;
      const what = text.textContent.slice(0, 40);
      const px = parseFloat(getComputedStyle(text).fontSize) * scale;
      if (px < min) out.small.push(what + " " + px.toFixed(1) + "px");
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1
          || r.bottom > box.bottom + 1) out.outside.push(what);
      for (const [other, o] of texts) {
        const w = Math.min(r.right, o.right) - Math.max(r.left, o.left);
        const h = Math.min(r.bottom, o.bottom) - Math.max(r.top, o.top);
        if (w > 1 && h > 1) out.overlapping.push(what + " / " + other);
      }
      texts.push([what, r]);
    }
  }
  const pre = document.createElement("pre");
  pre.id = "ticketsim-measured";
  pre.textContent = JSON.stringify(out);
  document.body.append(pre);
});
</script>"""

_MEASURED: Final = re.compile(r'<pre id="ticketsim-measured">(.*?)</pre>', re.S)


class BrowserError(RuntimeError):
    """Chromium failed, or did not answer in time."""


def find() -> str | None:
    """The browser's program, or ``None`` where there is none."""
    for name in PROGRAMS:
        found = shutil.which(name)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class Run:
    """One Chromium that ran: what it printed, and the profile folder it had (gone now)."""

    stdout: str
    stderr: str
    profile: str


def _chromium(program: str, args: list[str], timeout: float = TIMEOUT_S) -> Run:
    """Run Chromium headless once; its whole process group is killed before this returns."""
    profile = tempfile.mkdtemp(prefix="ticketsim-chromium-")
    flags = [*_FLAGS, f"--user-data-dir={profile}"]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
    process = subprocess.Popen(
        [program, *flags, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its zygote and renderers join this group, killed below
        env={**os.environ, "HOME": profile},
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise BrowserError(f"Chromium did not finish in {timeout:g} s: {args}") from exc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        _gone(profile)
        shutil.rmtree(profile, ignore_errors=True)
    if process.returncode != 0:
        raise BrowserError(f"Chromium exited {process.returncode}: {err.decode()[-2000:]}")
    return Run(out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), profile)


def _gone(profile: str, within: float = 5.0) -> None:
    """Wait for the group's last processes (the kill is asynchronous) to be reaped."""
    deadline = time.monotonic() + within
    while using(profile) and time.monotonic() < deadline:
        time.sleep(0.05)


def using(profile: str) -> list[int]:
    """The processes whose command line names ``profile``: Chromium's, still running."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path("/proc", entry, "cmdline").read_bytes()
            state = Path("/proc", entry, "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # ended meanwhile
        if profile.encode() in cmdline and state != "Z":
            found.append(int(entry))
    return found


def measure(
    program: str, page: Path, width: int, height: int, legible: float = LEGIBLE_PX
) -> dict[str, Any]:
    """Open a copy of ``page`` at ``width`` x ``height`` and say what a script sees of it:
    ``errors``, ``overflowing`` elements, ``small``, ``outside`` and ``overlapping`` texts of
    its SVGs, each SVG's box (``boxes``, by class) in px from the top of the page, and
    ``profile``, the folder Chromium had."""
    text = page.read_text(encoding="utf-8")
    copy = page.with_name(page.stem + ".measured.html")
    copy.write_text(
        text.replace("<head>", "<head>\n" + _CATCH, 1).replace("</body>", _MEASURE + "</body>", 1),
        encoding="utf-8",
    )
    try:
        address = f"{copy.resolve().as_uri()}#h={height}&min={legible}"
        run = _chromium(program, [f"--window-size={width},{height}", "--dump-dom", address])
    finally:
        copy.unlink()
    found = _MEASURED.search(run.stdout)
    if found is None:
        raise BrowserError(f"the page's measure did not come back: {run.stderr[-2000:]}")
    measured: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    measured["profile"] = run.profile
    return measured


def screenshot(program: str, page: Path, out: Path, width: int, height: int) -> str:
    """Shoot ``page`` at ``width`` x ``height`` into the PNG ``out``; the profile it had."""
    run = _chromium(
        program,
        [f"--window-size={width},{height}", f"--screenshot={out}", page.resolve().as_uri()],
    )
    if png_size(out) != (width, height):
        raise BrowserError(f"{out} is {png_size(out)}, not {width}x{height}")
    return run.profile


def png_size(path: Path) -> tuple[int, int]:
    """A PNG's width and height, from its header."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise BrowserError(f"{path} is not a PNG")
    width, height = struct.unpack(">II", head[16:24])
    return width, height


if __name__ == "__main__":
    browser = find()
    if browser is None:
        sys.exit("no Chromium: apt-get install chromium")
    page_arg, out_arg, size = sys.argv[1:4]
    w, h = (int(n) for n in size.split("x"))
    screenshot(browser, Path(page_arg), Path(out_arg), w, h)
    print(f"screenshot: {Path(out_arg).resolve()}")
