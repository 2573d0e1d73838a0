"""Answers as rows for pandas: one dict per window and feature."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Dict, List

from infranaut.v1 import models_pb2


def _time(ms: int) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.timezone.utc)


def window_rows(answer: models_pb2.WindowsResponse) -> List[Dict[str, Any]]:
    """One row per window and feature, the window's figures repeated on each (a window without
    features gives one row with ``feature`` None)."""
    rows: List[Dict[str, Any]] = []
    for w in answer.windows:
        base = {
            "start": _time(w.start_unix_ms),
            "end": _time(w.end_unix_ms),
            "version": w.version,
            "segment": f"{w.segment_column}={w.segment_value}" if w.segment_column else None,
            "open": w.open,
            "rows": w.rows,
            "late_rows": w.late_rows,
            "drift_share": w.drift_share,
            "dataset_drift": w.dataset_drift,
        }
        for name, value in w.performance.realized.items():
            base[f"realized_{name}"] = value
        for name, estimate in w.performance.estimated.items():
            base[f"estimated_{name}"] = estimate.value
        if not w.features:
            rows.append({**base, "feature": None})
        for f in w.features:
            rows.append(
                {
                    **base,
                    "feature": f.name,
                    "type": f.type,
                    "method": f.method or None,
                    "score": f.score if f.has_score else None,
                    "threshold": f.threshold if f.has_score else None,
                    "drift": f.drift,
                    "missing_rate": f.missing_rate,
                    "outside_range_share": f.outside_spec_range_share
                    if f.has_outside_spec_range_share
                    else (f.outside_reference_range_share if f.has_outside_reference_range_share else None),
                    "new_categories": f.new_categories if f.has_new_categories else None,
                }
            )
    return rows
