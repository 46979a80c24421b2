"""Small server-side SVG charts: no JavaScript, no CDN, and every label escaped.

Each function takes plain values and returns SVG markup (safe to embed).
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

PALETTE = ("#2457d6", "#e07b39", "#3a9d5d", "#b44cc4", "#d64545", "#2aa3b5", "#8c7a3f", "#6b7280")
TIER_COLORS = {"VIP": "#b8860b", "important": "#2457d6", "ordinary": "#3a9d5d", "potential": "#8c96a3",
               "unknown": "#cbd2d9"}


def color_for(key: str, keys: list[str]) -> str:
    return TIER_COLORS.get(key) or PALETTE[keys.index(key) % len(PALETTE)]


def _empty(width: int, height: int, label: str) -> Markup:
    return Markup(
        f'<svg class="chart chart-empty" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}">'
        f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#8c96a3">No data in this range</text></svg>'
    )


def stacked_bars(days: list[str], series: dict[str, dict[str, int]], *, label: str, width: int = 720,
                 height: int = 240) -> Markup:
    """Days on x, one stacked segment per key (channel or tier); `series[key][day] = count`."""
    if not days or not series:
        return _empty(width, height, label)
    keys = sorted(series)
    totals = [sum(series[k].get(d, 0) for k in keys) for d in days]
    top = max(totals) or 1
    left, bottom, right, top_pad = 44, 34, 130, 10
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    bar_w = plot_w / len(days)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{escape(label)}">']
    for i in range(5):
        v = top * i / 4
        y = top_pad + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e7eb"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10" '
                     f'fill="#52606d">{v:.0f}</text>')
    step = max(1, len(days) // 10)
    for i, day in enumerate(days):
        x = left + i * bar_w
        y = top_pad + plot_h
        for key in keys:
            n = series[key].get(day, 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            parts.append(
                f'<rect class="bar" x="{x + bar_w * 0.12:.1f}" y="{y:.1f}" width="{bar_w * 0.76:.1f}" height="{h:.1f}" '
                f'fill="{color_for(key, keys)}"><title>{escape(day)} · {escape(key)}: {n}</title></rect>'
            )
        if i % step == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 14}" text-anchor="middle" font-size="10" '
                         f'fill="#52606d">{escape(day[5:])}</text>')
    for j, key in enumerate(keys):
        y = top_pad + 6 + j * 18
        parts.append(f'<rect x="{width - right + 14}" y="{y}" width="11" height="11" fill="{color_for(key, keys)}"/>')
        parts.append(f'<text x="{width - right + 30}" y="{y + 10}" font-size="12" fill="#1f2933">{escape(key)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def hbars(items: list[tuple[str, float]], *, label: str, width: int = 520, unit: str = "") -> Markup:
    """One horizontal bar per (label, value), longest first."""
    if not items:
        return _empty(width, 80, label)
    row = 24
    height = row * len(items) + 10
    left = 140
    top = max(v for _, v in items) or 1
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{escape(label)}">']
    keys = [k for k, _ in items]
    for i, (key, value) in enumerate(items):
        y = 5 + i * row
        w = (width - left - 70) * value / top
        parts.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" font-size="12" fill="#1f2933">'
                     f'{escape(key[:22])}</text>')
        parts.append(f'<rect class="bar" x="{left}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 8}" '
                     f'fill="{color_for(key, keys)}"><title>{escape(key)}: {value:g}{escape(unit)}</title></rect>')
        parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 15}" font-size="12" fill="#52606d">'
                     f'{value:,.0f}{escape(unit)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def share_bar(items: list[tuple[str, float]], *, label: str, width: int = 720, height: int = 64) -> Markup:
    """One 100% bar split by share (e.g. revenue by tier), with percentages."""
    total = sum(v for _, v in items if v > 0)
    if not items or total <= 0:
        return _empty(width, height, label)
    keys = [k for k, _ in items]
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{escape(label)}">']
    x = 0.0
    for key, value in items:
        if value <= 0:
            continue
        w = width * value / total
        share = value / total * 100
        parts.append(f'<rect class="bar" x="{x:.1f}" y="0" width="{w:.1f}" height="34" fill="{color_for(key, keys)}">'
                     f'<title>{escape(key)}: {share:.1f}%</title></rect>')
        if w > 60:
            parts.append(f'<text x="{x + 6:.1f}" y="22" font-size="12" fill="#fff">{escape(key)} {share:.0f}%</text>')
        x += w
    parts.append("</svg>")
    return Markup("".join(parts))
