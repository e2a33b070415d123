"""Earnings per day as numbers and as an inline SVG bar chart, rendered on the server (no JavaScript)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape

from vendor_stub.storage import Store

__all__ = ["SERIES", "DayEarnings", "earnings_by_day", "render_chart"]

#: (key, label, colour) of each bar in a day's group.
SERIES = (
    ("taken", "Taken", "#1f4e79"),
    ("redeemed", "Redeemed", "#2e8b57"),
    ("pending", "Pending", "#d4a017"),
    ("rejected", "Rejected", "#b22222"),
)


@dataclass(frozen=True, slots=True)
class DayEarnings:
    """Coins of one day (by the day they were taken), split by redemption state, and their value."""

    day: dt.date
    taken: int
    redeemed: int
    pending: int
    rejected: int
    amount: int  # minor units taken


def earnings_by_day(store: Store, days: int, today: dt.date) -> list[DayEarnings]:
    """The last ``days`` days up to ``today`` (UTC), oldest first, including days with no sales."""
    start = today - dt.timedelta(days=days - 1)
    start_ts = int(dt.datetime.combine(start, dt.time(), dt.UTC).timestamp())
    rows = store.query(
        # whole days since the epoch (UTC) by integer division: the same SQL on SQLite and PostgreSQL
        "SELECT created_at / 86400 AS day, status, SUM(coins) AS coins, SUM(amount) AS amount"
        " FROM spends WHERE created_at >= ? GROUP BY created_at / 86400, status",
        (start_ts,),
    )
    acc: dict[str, dict[str, int]] = {}
    for r in rows:
        day_text = (dt.date(1970, 1, 1) + dt.timedelta(days=int(r["day"]))).isoformat()
        d = acc.setdefault(day_text, {"taken": 0, "redeemed": 0, "pending": 0, "rejected": 0, "amount": 0})
        d["taken"] += int(r["coins"])
        d["amount"] += int(r["amount"])
        key = {"redeemed": "redeemed", "rejected": "rejected"}.get(r["status"], "pending")
        d[key] += int(r["coins"])
    out = []
    for i in range(days):
        day = start + dt.timedelta(days=i)
        d = acc.get(day.isoformat(), {})
        out.append(DayEarnings(day, d.get("taken", 0), d.get("redeemed", 0), d.get("pending", 0),
                               d.get("rejected", 0), d.get("amount", 0)))  # fmt: skip
    return out


def _ticks(peak: int) -> list[int]:
    """Round axis ticks from 0 to at least ``peak``: steps of 1, 2 or 5 times a power of ten, at most 6 steps."""
    step = 1
    while True:
        for mult in (1, 2, 5):
            if step * mult * 6 >= peak:
                size = step * mult
                return [size * i for i in range(max(1, -(-peak // size)) + 1)]
        step *= 10


def render_chart(days: list[DayEarnings], width: int = 760, height: int = 280) -> str:
    """An accessible SVG grouped bar chart: one group per day, one bar per series, with axis and labels."""
    left, right, top, bottom = 44, 12, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = _ticks(max((max(d.taken, d.redeemed, d.pending, d.rejected) for d in days), default=0))
    peak = ticks[-1]
    group_w = plot_w / max(len(days), 1)
    bar_w = max(2.0, (group_w * 0.8) / len(SERIES))
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="chart-title" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">',
        '<title id="chart-title">Coins per day: taken, redeemed, pending, rejected</title>',
    ]
    for value in ticks:
        y = top + plot_h - plot_h * value / peak
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{value}</text>')
    for gi, d in enumerate(days):
        gx = left + gi * group_w + group_w * 0.1
        for si, (key, label, colour) in enumerate(SERIES):
            value = int(getattr(d, key))
            h = plot_h * value / peak if peak else 0
            x = gx + si * bar_w
            y = top + plot_h - h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(d.day.isoformat())}: {value} {escape(label.lower())}</title></rect>"
            )
        if len(days) <= 14 or gi % 2 == 0:
            label = d.day.strftime("%d %b")
            parts.append(
                f'<text x="{left + gi * group_w + group_w / 2:.1f}" y="{height - bottom + 18}" class="axis" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" class="base"/>')
    parts.append("</svg>")
    return "".join(parts)
