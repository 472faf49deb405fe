"""Draw the Grafana dashboard's panels from live Prometheus data into a PNG: a preview, not a Grafana screenshot.

Grafana can't run in the build environment, so this reads dashboards/tidings.json, runs every panel's queries through
Prometheus' HTTP API with Grafana's variables substituted as Grafana would, lays the panels out on the dashboard's
24-column grid as inline SVG, and screenshots the page with Debian's chromium through Playwright.

    uv run python deploy/grafana/preview.py --prometheus http://127.0.0.1:9090 --out docs/images/dashboard-preview.png
"""

from __future__ import annotations

import argparse
import html
import json
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

DASHBOARD = Path(__file__).parent / "dashboards" / "tidings.json"
CHROMIUM = Path("/usr/bin/chromium")
WIDTH = 1600  # px of the 24-column grid
CELL = 30  # Grafana's grid cell height and margin, in px
GAP = 8
POINTS = 240  # data points per series, like a narrow panel's maxDataPoints
COLORS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#705da0", "#37872d", "#fade2a"]
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def duration(text: str) -> float:
    """Seconds in a Prometheus duration such as 15s, 5m or 1h."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 15m)")
    factor = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]
    return float(match[1]) * factor


def substitute(
    expr: str, *, interval: float, scrape_interval: float, range_seconds: float, variables: dict[str, str] | None = None
) -> str:
    """The expr with Grafana's variables replaced as Grafana does for a panel of `interval` seconds per point.

    $__rate_interval is max($__interval + scrape interval, 4 * scrape interval): a rate window that always holds at
    least two samples. Dashboard variables come from `variables`; an unknown one is an error, not a silent gap.
    """
    values = {
        "__interval": f"{round(interval)}s",
        "__interval_ms": str(round(interval * 1000)),
        "__rate_interval": f"{round(max(interval + scrape_interval, 4 * scrape_interval))}s",
        "__range": f"{round(range_seconds)}s",
        "__range_s": str(round(range_seconds)),
        "__range_ms": str(round(range_seconds * 1000)),
        **(variables or {}),
    }

    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        if name not in values:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return values[name]

    return VARIABLE.sub(replace, expr)


def dashboard_variables(dashboard: dict[str, Any]) -> dict[str, str]:
    """Each templating variable's current value; "All" becomes a regex matching everything."""
    chosen: dict[str, str] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        value = variable.get("current", {}).get("value", ".*")
        value = "|".join(value) if isinstance(value, list) else str(value)
        chosen[variable["name"]] = ".*" if value in ("$__all", "All") else value
    return chosen


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]


def query_range(prometheus: str, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    params: dict[str, str | float] = {"query": expr, "start": start, "end": end, "step": step}
    body = httpx.get(f"{prometheus}/api/v1/query_range", params=params, timeout=30).json()
    if body["status"] != "success":
        raise RuntimeError(f"{expr}: {body.get('error')}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def legend(template: str, labels: dict[str, str]) -> str:
    if not template:
        return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), template)


def panel_series(
    panel: dict[str, Any], prometheus: str, window: tuple[float, float], step: float, **subs: Any
) -> list[Series]:
    found: list[Series] = []
    for target in panel.get("targets", []):
        expr = substitute(target["expr"], **subs)
        for result in query_range(prometheus, expr, window[0], window[1], step):
            points = [(float(t), float(v)) for t, v in result["values"] if math.isfinite(float(v))]
            found.append(Series(legend(target.get("legendFormat", ""), result["metric"]), points))
    stacking = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {}).get("stacking", {})
    if stacking.get("mode") == "normal":
        below: dict[float, float] = {}
        for series in found:
            series.points = [(t, v + below.get(t, 0.0)) for t, v in series.points]
            below.update(series.points)
    return found


def format_value(value: float, unit: str) -> str:
    if unit == "percentunit":
        return f"{value * 100:.3g}%"
    if unit == "bytes":
        for prefix in ("B", "KiB", "MiB", "GiB"):
            if abs(value) < 1024 or prefix == "GiB":
                return f"{value:.3g} {prefix}"
            value /= 1024
    if unit == "s" and 0 < abs(value) < 1:
        return f"{value * 1000:.3g} ms"
    suffix = {"ops": " ops/s", "reqps": " req/s", "s": " s"}.get(unit, "")
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{prefix}{suffix}"
    return f"{value:.3g}{suffix}"


def nice_top(peak: float) -> float:
    """The smallest 1, 2, 2.5 or 5 * 10^n steps of four that reach the peak, so axis labels read as round numbers."""
    if peak <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(peak / 4))
    return 4 * next(float(m * magnitude) for m in (1, 2, 2.5, 5, 10) if 4 * m * magnitude >= peak)


def stat_svg(series: list[Series], unit: str, width: int, height: int) -> str:
    last = [s.points[-1][1] for s in series if s.points]
    text = format_value(sum(last), unit) if last else "No data"
    size = min(height * 0.45, width / max(len(text), 1) * 1.6)
    return (
        f'<svg width="{width}" height="{height}"><text x="{width / 2}" y="{height / 2}" font-size="{size:.0f}" '
        f'fill="#73bf69" text-anchor="middle" dominant-baseline="central" font-weight="500">'
        f"{html.escape(text)}</text></svg>"
    )


def chart_svg(series: list[Series], unit: str, window: tuple[float, float], width: int, height: int) -> str:
    if not any(s.points for s in series):
        return (
            f'<svg width="{width}" height="{height}"><text x="{width / 2}" y="{height / 2}" fill="#8e8e8e" '
            'text-anchor="middle">No data</text></svg>'
        )
    rows = math.ceil(len(series) / 3)
    plot_h, left, top = height - 22 - 16 * rows, 64, 6
    plot_w = width - left - 8
    top_value = nice_top(max(v for s in series for _, v in s.points))

    def x(t: float) -> float:
        return left + (t - window[0]) / (window[1] - window[0]) * plot_w

    def y(v: float) -> float:
        return top + plot_h - max(v, 0.0) / top_value * plot_h

    parts = [f'<svg width="{width}" height="{height}" font-size="11" fill="#ccccdc">']
    for i in range(5):
        value = top_value * i / 4
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#2c3235"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{format_value(value, unit)}</text>'
        )
    for i in range(5):
        moment = window[0] + (window[1] - window[0]) * i / 4
        label = datetime.fromtimestamp(moment, UTC).strftime("%H:%M:%S")
        anchor = ("start", "middle", "middle", "middle", "end")[i]
        parts.append(f'<text x="{x(moment):.1f}" y="{top + plot_h + 14}" text-anchor="{anchor}">{label}</text>')
    for index, s in enumerate(series):
        color = COLORS[index % len(COLORS)]
        line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in s.points)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        column, row = index % 3, index // 3
        lx, ly = left + column * (plot_w / 3), top + plot_h + 30 + row * 16
        parts.append(f'<rect x="{lx:.0f}" y="{ly - 8}" width="12" height="3" fill="{color}"/>')
        parts.append(f'<text x="{lx + 16:.0f}" y="{ly - 3}">{html.escape(s.name[:40])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(dashboard: dict[str, Any], prometheus: str, range_seconds: float, scrape_interval: float) -> str:
    end = time.time()
    window = (end - range_seconds, end)
    step = max(scrape_interval, range_seconds / POINTS)
    subs = {
        "interval": step,
        "scrape_interval": scrape_interval,
        "range_seconds": range_seconds,
        "variables": dashboard_variables(dashboard),
    }
    column = (WIDTH + GAP) / 24
    boxes: list[str] = []
    bottom = 0
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        left, top = grid["x"] * column, grid["y"] * (CELL + GAP)
        width, height = round(grid["w"] * column - GAP), grid["h"] * CELL + (grid["h"] - 1) * GAP
        bottom = max(bottom, int(top + height))
        title = html.escape(panel.get("title", ""))
        place = f"left:{left:.0f}px;top:{top}px;width:{width}px;height:{height}px"
        if panel["type"] == "row":
            boxes.append(f'<div class="row" style="{place}">{title}</div>')
            continue
        series = panel_series(panel, prometheus, window, step, **subs)
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
        inner_w, inner_h = width - 16, height - 36
        if panel["type"] == "stat":
            body = stat_svg(series, unit, inner_w, inner_h)
        else:
            body = chart_svg(series, unit, window, inner_w, inner_h)
        boxes.append(f'<div class="panel" style="{place}"><div class="title">{title}</div>{body}</div>')
    shown = (
        f"{datetime.fromtimestamp(window[0], UTC):%Y-%m-%d %H:%M:%S} to {datetime.fromtimestamp(end, UTC):%H:%M:%S} UTC"
    )
    caption = (
        f"{html.escape(dashboard['title'])} &mdash; preview drawn by deploy/grafana/preview.py from live Prometheus "
        f"data ({shown}); not a Grafana screenshot"
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; padding: 16px; background: #111217; color: #ccccdc; font: 13px sans-serif; width: {WIDTH}px; }}
h1 {{ font-size: 16px; font-weight: 500; margin: 0 0 12px; }}
.grid {{ position: relative; height: {bottom}px; }}
.panel {{ position: absolute; box-sizing: border-box; background: #181b1f; border: 1px solid #2c3235;
  border-radius: 2px; padding: 6px 8px; }}
.title {{ font-weight: 500; height: 22px; white-space: nowrap; overflow: hidden; }}
.row {{ position: absolute; font-size: 15px; font-weight: 500; line-height: {CELL}px; }}
</style></head><body><h1>{caption}</h1><div class="grid">{"".join(boxes)}</div></body></html>"""


def screenshot(page_html: str, out: Path, chromium: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": WIDTH + 32, "height": 800})
        page.set_content(page_html)
        page.screenshot(path=str(out), full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus base URL")
    parser.add_argument("--out", type=Path, default=Path("docs/images/dashboard-preview.png"))
    parser.add_argument("--range", type=duration, default=duration("15m"), help="time shown, e.g. 15m (default)")
    parser.add_argument("--scrape-interval", type=duration, default=duration("15s"), help="Prometheus' (15s)")
    parser.add_argument("--dashboard", type=Path, default=DASHBOARD)
    parser.add_argument("--chromium", type=Path, default=CHROMIUM)
    parser.add_argument("--html", type=Path, help="also write the page drawn, for inspection")
    args = parser.parse_args()
    dashboard = json.loads(args.dashboard.read_text())
    page_html = render_html(dashboard, args.prometheus.rstrip("/"), args.range, args.scrape_interval)
    if args.html:
        args.html.write_text(page_html)
    screenshot(page_html, args.out, args.chromium)
    print(args.out)


if __name__ == "__main__":
    main()
