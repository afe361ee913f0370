"""How long one update of notebook 01's slider takes: a jump to an uncoded position, and a step to a prefetched one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from invlab.widgets.rate_control import RateControlApp


def benchmark(app: RateControlApp, rates: Iterable[float]) -> pd.DataFrame:
    """Wall time of one update per rate: ``cold picture`` and ``cold`` (the position's cache dropped first: until
    its picture is drawn, and until every view is) and ``next step`` (one slider step further, once the background
    prefetch has coded it). The RD curve is built first."""
    app.rd_curve()
    step = app.rate.step
    rows = []
    for rate in rates:
        app.wait()
        app.service.forget(app.at(rate))
        app.update(rate)
        cold, picture = app.last_seconds, app.last_picture_seconds
        app.wait()
        app.update(rate + step if rate + step <= app.rate.max else rate - step)
        rows.append({"rate": rate, "cold picture (s)": picture, "cold (s)": cold, "next step (s)": app.last_seconds})
    app.wait()
    return pd.DataFrame(rows)
