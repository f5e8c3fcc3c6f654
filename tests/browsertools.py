"""Headless Chromium for the report tests: a screenshot of a page and its console messages.

Chromium runs with a throwaway profile, no sandbox (the tests may run as root), no GPU and
no background networking. With ``--enable-logging=stderr`` every console message — a
``console.*`` call, an uncaught exception, a Content-Security-Policy violation (a blocked
network load or script) — appears on stderr as a ``CONSOLE`` line; a self-contained page
without scripts has none.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

CONSOLE_LINE = re.compile(r":CONSOLE[:(]")
CHROMIUM_FLAGS = (
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
)
MISSING = "chromium is not installed (apt-get install -y chromium; .ci/run installs it)"


def chromium() -> str | None:
    """The Chromium executable, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(
    page: Path, png: Path, work: Path, size: tuple[int, int] = (1200, 1600)
) -> list[str]:
    """Render ``page`` to ``png``; returns the console messages Chromium logged."""
    executable = chromium()
    assert executable, MISSING
    command = [
        executable,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={work / 'profile'}",
        f"--screenshot={png}",
        f"--window-size={size[0]},{size[1]}",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0 and png.is_file(), done.stderr[-2000:]
    return [line for line in done.stderr.splitlines() if CONSOLE_LINE.search(line)]


def pixels(png: Path) -> np.ndarray:
    """The screenshot as an (H, W, 3) uint8 array."""
    import imageio.v3 as iio

    return np.asarray(iio.imread(png))[..., :3]


def share_of_colour(image: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 6) -> float:
    """The fraction of pixels within ``tolerance`` of ``rgb`` in every channel."""
    close = np.all(np.abs(image.astype(int) - np.asarray(rgb)) <= tolerance, axis=-1)
    return float(close.mean())
