"""The building blocks of ``report.html``: escaping, numbers, colours, images and the page.

The page is self-contained: CSS inline, images as base64 data URIs, no script; its
Content-Security-Policy lets the browser load nothing from anywhere.
"""

from __future__ import annotations

import base64
import html
import itertools
from collections.abc import Iterable, Sequence

CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
# Success rate → colour: stops chosen so that 0.8, 0.95 and 1.0 look different (acceptance
# thresholds live up there), from ColorBrewer's RdYlGn.
SUCCESS_STOPS = ((0.0, (244, 109, 67)), (0.8, (254, 224, 139)), (1.0, (102, 189, 99)))
ENERGY_STOPS = ((0.0, (254, 237, 222)), (1.0, (253, 141, 60)))  # least → most energy

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1d2127; background: #f6f7f9; line-height: 1.45; }
main { max-width: 1120px; margin: 0 auto; padding: 0 24px 48px; }
header.verdict { padding: 24px; margin: 0 -24px 8px; border-bottom: 6px solid #999; }
header.PASSED { background: #e8f5e9; border-color: #2e7d32; }
header.FAILED { background: #fdecea; border-color: #c62828; }
.badge { display: inline-block; font-size: 28px; font-weight: 700; padding: 4px 18px;
         border-radius: 6px; color: #fff; letter-spacing: 0.05em; }
.PASSED .badge { background: #2e7d32; } .FAILED .badge { background: #c62828; }
h1 { font-size: 26px; margin: 12px 0 4px; } h2 { font-size: 20px; margin: 28px 0 8px; }
h3 { font-size: 16px; margin: 18px 0 6px; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 4px 18px 14px;
          margin-top: 16px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { border-bottom: 1px solid #e3e6ea; padding: 5px 8px; text-align: left;
         vertical-align: middle; }
th { background: #f0f2f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.heat { text-align: center; font-weight: 600; font-variant-numeric: tabular-nums; }
.PASS { color: #2e7d32; font-weight: 700; } .FAIL { color: #c62828; font-weight: 700; }
.INFO { color: #555; }
.muted { color: #5f6b7a; font-size: 13px; }
code, .digest { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12.5px; }
.digest { word-break: break-all; }
.legend { display: inline-block; width: 220px; height: 12px; border: 1px solid #ccc;
          vertical-align: middle; margin: 0 6px; }
.chip { display: inline-block; border-radius: 10px; padding: 0 8px; margin: 1px 2px;
        font-size: 12px; border: 1px solid currentColor; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 12px; }
.stills { display: grid; grid-template-columns: repeat(auto-fill, minmax(500px, 1fr)); gap: 12px; }
figure { margin: 0; } figure img { max-width: 100%; border: 1px solid #dde1e6; }
figcaption { font-size: 13px; color: #333; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
pre { background: #f0f2f5; padding: 10px; overflow-x: auto; font-size: 13px; }
"""


def esc(value: object) -> str:
    """Text (or any value's ``str``) escaped for HTML content and attribute values."""
    return html.escape(str(value), quote=True)


def number(value: float | int | None, digits: int = 4) -> str:
    """A number for people: ``—`` for none, thousands separated from 10 000 on, else 4 digits."""
    if value is None:
        return "—"
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def colour(fraction: float, stops: Sequence[tuple[float, tuple[int, int, int]]]) -> str:
    """The colour at ``fraction`` (clipped to the stops) on a piecewise-linear scale, as #rrggbb."""
    fraction = min(max(fraction, stops[0][0]), stops[-1][0])
    for (x0, c0), (x1, c1) in itertools.pairwise(stops):
        if fraction <= x1:
            t = 0.0 if x1 == x0 else (fraction - x0) / (x1 - x0)
            rgb = (round(a + t * (b - a)) for a, b in zip(c0, c1, strict=True))
            return "#" + "".join(f"{channel:02x}" for channel in rgb)
    return "#" + "".join(f"{channel:02x}" for channel in stops[-1][1])


def gradient(stops: Sequence[tuple[float, tuple[int, int, int]]]) -> str:
    """A CSS linear-gradient through the stops (for a legend)."""
    low, high = stops[0][0], stops[-1][0]
    parts = [f"rgb{rgb} {100 * (x - low) / (high - low):.0f}%" for x, rgb in stops]
    return f"linear-gradient(to right, {', '.join(parts)})"


def data_uri(png: bytes) -> str:
    """A PNG as a data URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image(png: bytes, alt: str, width: int | None = None) -> str:
    """An ``<img>`` of inline PNG bytes."""
    size = f' width="{width}"' if width else ""
    return f'<img src="{data_uri(png)}" alt="{esc(alt)}"{size}>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int]) -> str:
    """A table of ready-made cell HTML; columns in ``numeric`` are right-aligned.

    A cell that starts with ``<td`` is taken as the whole cell (for coloured cells).
    """
    head = "".join(
        f'<th class="num">{esc(h)}</th>' if i in numeric else f"<th>{esc(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if cell.startswith("<td"):
                cells.append(cell)
            else:
                cells.append(f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def verdict(word: str) -> str:
    """A verdict word (PASS/FAIL/INFO) styled by its meaning."""
    return f'<span class="{esc(word)}">{esc(word)}</span>'


def page(title: str, verdict_word: str, header: str, sections: Sequence[str]) -> str:
    """The whole document."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(title)}</title>",
            f"<style>{CSS}</style>",
            "</head>",
            "<body>",
            "<main>",
            f'<header class="verdict {esc(verdict_word)}">{header}</header>',
            *sections,
            "</main>",
            "</body>",
            "</html>",
            "",
        ]
    )
