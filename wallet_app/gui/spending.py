"""The Spending page: what was spent per day and per vendor, drawn with Qt Charts.

Amounts are summed as integer minor units; only the chart's drawing coordinates are converted to major units.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from PySide6.QtCharts import (
    QBarCategoryAxis,
    QBarSeries,
    QBarSet,
    QChart,
    QChartView,
    QPieSeries,
    QValueAxis,
)
from PySide6.QtCore import QMargins, Qt
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from netpay.money import CURRENCY_EXPONENTS, Money
from wallet_app.gui.pages import Page
from wallet_app.gui.theme import is_dark
from wallet_app.gui.widgets import Card, heading, muted

__all__ = ["SpendingPage", "spending_by_day", "spending_by_vendor"]

DAYS = 14
ACCENT = QColor("#2563eb")
PALETTE = ("#2563eb", "#0ea5e9", "#10b981", "#f59e0b", "#8b5cf6", "#ef4444", "#94a3b8")


def _day(ts: int) -> str:
    return time.strftime("%d", time.localtime(ts))


def spending_by_day(entries: list[Any], currency: str, now: float, days: int = DAYS) -> list[tuple[str, Money]]:
    """Settled purchases per local day for the last ``days`` days, oldest first."""
    totals: dict[str, int] = defaultdict(int)
    for e in entries:
        if e.kind == "payment" and e.status == "settled" and e.amount.currency == currency:
            totals[_day(e.at)] += e.amount.amount
    out = []
    for back in range(days - 1, -1, -1):
        key = _day(int(now - back * 86400))
        out.append((key, Money(totals.get(key, 0), currency)))
    return out


def spending_by_vendor(entries: list[Any], currency: str) -> list[tuple[str, Money]]:
    """Settled purchases per vendor, largest first."""
    totals: dict[str, int] = defaultdict(int)
    for e in entries:
        if e.kind == "payment" and e.status == "settled" and e.amount.currency == currency:
            totals[e.vendor_name or e.vendor_id or "?"] += e.amount.amount
    return [(name, Money(amount, currency)) for name, amount in sorted(totals.items(), key=lambda kv: -kv[1])]


def _major(m: Money) -> float:
    return float(m.amount / int(10 ** CURRENCY_EXPONENTS[m.currency]))  # drawing coordinate only, never stored


class SpendingPage(Page):
    """Two charts: spending per day over two weeks, and spending per vendor."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(self.tr("Spending"), self.tr("Where your coins went over the last two weeks."), parent)
        self.currency = QComboBox()
        self.currency.setMinimumWidth(90)
        self.tools.addWidget(QLabel(self.tr("Currency")))
        self.tools.addWidget(self.currency)
        self.total_label = heading("")
        row = QHBoxLayout()
        row.setSpacing(14)
        self.day_card, self.day_view = self._chart_card(self.tr("Per day"))
        self.vendor_card, self.vendor_view = self._chart_card(self.tr("Per vendor"))
        row.addWidget(self.day_card, 3)
        row.addWidget(self.vendor_card, 2)
        self.layout_.addWidget(self.total_label)
        self.layout_.addLayout(row, 1)
        self._entries: list[Any] = []
        self.currency.currentIndexChanged.connect(lambda _i: self._redraw())

    def _chart_card(self, title: str) -> tuple[Card, QChartView]:
        card = Card(margins=12)
        card.body.addWidget(heading(title))
        view = QChartView()
        view.setRenderHint(QPainter.RenderHint.Antialiasing)
        view.setMinimumHeight(300)
        view.setStyleSheet("background: transparent; border: none;")
        card.body.addWidget(view, 1)
        return card, view

    def update_data(self, snapshot: dict[str, Any]) -> None:
        self._entries = list(snapshot["activity"])
        currencies = (
            sorted({e.amount.currency for e in self._entries if e.kind == "payment"})
            or sorted({b.currency for b in snapshot["balance"]})
            or ["EUR"]
        )
        current = self.currency.currentText()
        self.currency.blockSignals(True)
        self.currency.clear()
        self.currency.addItems(currencies)
        if current in currencies:
            self.currency.setCurrentText(current)
        self.currency.blockSignals(False)
        self._redraw()

    def _chart(self) -> QChart:
        chart = QChart()
        chart.legend().hide()
        chart.setBackgroundVisible(False)
        chart.setMargins(QMargins(4, 4, 4, 4))
        chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
        return chart

    def _style_axis(self, axis: Any) -> None:
        text = QColor("#cbd5e1" if is_dark() else "#475569")
        grid = QColor("#334155" if is_dark() else "#e2e8f0")
        axis.setLabelsColor(text)
        axis.setGridLineColor(grid)
        axis.setLinePenColor(grid)
        font = QFont()
        font.setPointSize(8)
        axis.setLabelsFont(font)
        axis.setTitleBrush(text)

    def _redraw(self) -> None:
        currency = self.currency.currentText() or "EUR"
        now = time.time()
        per_day = spending_by_day(self._entries, currency, now)
        per_vendor = spending_by_vendor(self._entries, currency)
        total = sum((m for _, m in per_day), Money.zero(currency))
        self.total_label.setText(self.tr("%1 spent in the last 14 days").replace("%1", total.format()))

        chart = self._chart()
        bars = QBarSet(self.tr("Spent"))
        bars.setColor(ACCENT)
        bars.setBorderColor(ACCENT)
        for _, m in per_day:
            bars.append(_major(m))
        series = QBarSeries()
        series.append(bars)
        series.setBarWidth(0.6)
        chart.addSeries(series)
        x = QBarCategoryAxis()
        x.append([d for d, _ in per_day])
        y = QValueAxis()
        top = max((_major(m) for _, m in per_day), default=0.0)
        y.setRange(0, top if top > 0 else 1)
        y.applyNiceNumbers()
        y.setLabelFormat("%.2f")
        y.setTitleText(currency)
        x.setTitleText(
            time.strftime("%d %b", time.localtime(now - (DAYS - 1) * 86400))
            + " – "
            + time.strftime("%d %b", time.localtime(now))
        )
        for axis in (x, y):
            self._style_axis(axis)
        x.setGridLineVisible(False)
        chart.addAxis(x, Qt.AlignmentFlag.AlignBottom)
        chart.addAxis(y, Qt.AlignmentFlag.AlignLeft)
        series.attachAxis(x)
        series.attachAxis(y)
        self._replace(self.day_view, chart)

        vchart = self._chart()
        pie = QPieSeries()
        pie.setHoleSize(0.5)
        pie.setPieSize(0.78)
        others = Money.zero(currency)
        for i, (name, m) in enumerate(per_vendor):
            if i < len(PALETTE) - 1:
                slice_ = pie.append(f"{name}  {m.format()}", _major(m))
                slice_.setColor(QColor(PALETTE[i]))
                slice_.setBorderColor(QColor("#1e293b" if is_dark() else "#ffffff"))
            else:
                others = others + m
        if others.amount:
            other = pie.append(self.tr("Others  %1").replace("%1", others.format()), _major(others))
            other.setColor(QColor(PALETTE[-1]))
        if not per_vendor:
            empty = pie.append(self.tr("No purchases yet"), 1.0)
            empty.setColor(QColor("#334155" if is_dark() else "#e2e8f0"))
        vchart.addSeries(pie)
        legend = vchart.legend()
        legend.show()
        legend.setAlignment(Qt.AlignmentFlag.AlignBottom)
        legend.setLabelColor(QColor("#cbd5e1" if is_dark() else "#334155"))
        font = QFont()
        font.setPointSize(9)
        legend.setFont(font)
        self._replace(self.vendor_view, vchart)

    @staticmethod
    def _replace(view: QChartView, chart: QChart) -> None:
        old = view.chart()
        view.setChart(chart)
        if old is not None:
            old.deleteLater()


def caption(text: str) -> QLabel:
    return muted(text)
