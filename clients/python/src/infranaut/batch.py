"""Turning rows in memory into the columnar batch the node takes (docs/protocol.md, "Columns").

A column goes as doubles when its values are numbers (NaN and None are missing), as bools when
they are booleans, and as strings otherwise. The id and time columns become the batch's
``prediction_ids`` and ``event_time_unix_ms``; the prediction and label columns stay columns and
are named in the batch as such, as ``infranaut push`` does.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from infranaut.v1 import telemetry_pb2

#: Rows per batch the client sends at most (the node's default request limit is 16 MiB; 10,000
#: rows of 100 numeric columns are about 8 MiB).
DEFAULT_BATCH_ROWS = 10_000


def columns_of(data: Any) -> Tuple[List[str], Dict[str, np.ndarray]]:
    """The column names, in order, and each column as a 1-D numpy array, from a pandas
    DataFrame, a mapping of names to sequences or arrays, or a numpy structured array."""
    if hasattr(data, "columns") and hasattr(data, "__getitem__") and hasattr(data, "index"):
        # A pandas DataFrame (duck-typed: pandas is optional).
        names = [str(c) for c in data.columns]
        if len(set(names)) != len(names):
            raise ValueError("the DataFrame has repeated column names")
        return names, {str(c): _pandas_values(data[c]) for c in data.columns}
    if isinstance(data, np.ndarray) and data.dtype.names:
        names = list(data.dtype.names)
        return names, {name: np.asarray(data[name]) for name in names}
    if isinstance(data, Mapping):
        names = [str(k) for k in data.keys()]
        return names, {str(k): np.asarray(v) if not isinstance(v, np.ndarray) else v for k, v in data.items()}
    raise TypeError(
        f"rows must be a pandas DataFrame, a dict of columns or a numpy structured array, not {type(data).__name__}"
    )


def _pandas_values(series: Any) -> np.ndarray:
    """A pandas column as numpy: nullable integers and floats as float64 with NaN, nullable
    booleans and strings as objects with None, datetimes as they are."""
    dtype = str(series.dtype)
    if dtype in ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64"):
        return series.to_numpy(dtype="float64", na_value=np.nan)
    if dtype == "boolean" or dtype == "category" or dtype.startswith("string") or dtype == "str":
        return series.astype(object).where(series.notna(), None).to_numpy(dtype=object)
    return series.to_numpy()


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def to_column(name: str, values: np.ndarray) -> telemetry_pb2.Column:
    """One column, typed by its values (see the module's documentation)."""
    column = telemetry_pb2.Column(name=name)
    kind = values.dtype.kind
    if kind == "b":
        column.bools.values.extend(values.tolist())
        return column
    if kind in "iuf":
        column.doubles.values.extend(values.astype("float64", copy=False).tolist())
        return column
    if kind == "M":
        raise TypeError(f"column {name!r} holds datetimes: name it as the timestamp column")
    cells = values.tolist()
    present = [v for v in cells if not _is_missing(v)]
    if present and all(isinstance(v, (bool, np.bool_)) for v in present):
        column.bools.values.extend(bool(v) if not _is_missing(v) else False for v in cells)
        column.bools.missing_rows.extend(i for i, v in enumerate(cells) if _is_missing(v))
    elif present and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in present):
        column.doubles.values.extend(float("nan") if _is_missing(v) else float(v) for v in cells)
    else:
        column.strings.values.extend("" if _is_missing(v) else str(v) for v in cells)
        column.strings.missing_rows.extend(i for i, v in enumerate(cells) if _is_missing(v))
    return column


def event_times_ms(name: str, values: np.ndarray) -> List[int]:
    """Event times as Unix milliseconds: datetimes (naive ones are UTC), numbers (already
    milliseconds) or ISO 8601 text. A missing time is an error: the node places rows by it."""
    if values.dtype.kind == "M":
        if np.isnat(values).any():
            raise ValueError(f"timestamp column {name!r} has missing times")
        return values.astype("datetime64[ms]").astype("int64").tolist()
    out: List[int] = []
    for row, value in enumerate(values.tolist()):
        if _is_missing(value):
            raise ValueError(f"timestamp column {name!r}: row {row} has no time")
        if isinstance(value, (_dt.datetime,)):
            moment = value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
            out.append(int(round(moment.timestamp() * 1000)))
        elif hasattr(value, "value") and hasattr(value, "tz_convert"):
            # pandas.Timestamp: nanoseconds since the epoch (UTC).
            out.append(int(value.value // 1_000_000))
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            out.append(int(value))
        elif isinstance(value, str):
            text = value.strip().replace("Z", "+00:00")
            try:
                moment = _dt.datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"timestamp column {name!r}: row {row} is not ISO 8601 or milliseconds: {value!r}")
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=_dt.timezone.utc)
            out.append(int(round(moment.timestamp() * 1000)))
        else:
            raise ValueError(f"timestamp column {name!r}: row {row} is not a time: {value!r}")
    return out


def batches(
    model: str,
    data: Any,
    *,
    id_column: Optional[str] = None,
    timestamp_column: Optional[str] = None,
    prediction_column: Optional[str] = None,
    label_column: Optional[str] = None,
    version: Optional[str] = None,
    reference: bool = False,
    labels: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> Iterator[telemetry_pb2.TelemetryBatch]:
    """The rows of ``data`` as batches of at most ``batch_rows`` rows each."""
    if not model:
        raise ValueError("a model id is required")
    names, arrays = columns_of(data)
    for role, column in (
        ("id_column", id_column),
        ("timestamp_column", timestamp_column),
        ("prediction_column", prediction_column),
        ("label_column", label_column),
    ):
        if column is not None and column not in arrays:
            raise ValueError(f"{role} {column!r} is not a column of the rows (columns: {', '.join(names)})")
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        raise ValueError(f"the columns have different lengths: {sorted(lengths)}")
    rows = lengths.pop() if lengths else 0
    ids = [str(v) for v in arrays[id_column].tolist()] if id_column else None
    if ids is not None and any(not i for i in ids):
        raise ValueError(f"id column {id_column!r} has empty ids")
    times = event_times_ms(timestamp_column, arrays[timestamp_column]) if timestamp_column else None
    if labels:
        kept = [label_column]
    else:
        kept = [n for n in names if n not in (id_column, timestamp_column)]
    for start in range(0, rows, max(1, batch_rows)):
        end = min(rows, start + batch_rows)
        batch = telemetry_pb2.TelemetryBatch(model_id=model, row_count=end - start)
        if ids is not None:
            batch.prediction_ids.extend(ids[start:end])
        if times is not None and not labels:
            batch.event_time_unix_ms.extend(times[start:end])
        for name in kept:
            batch.columns.append(to_column(name, arrays[name][start:end]))
        if prediction_column and not labels:
            batch.prediction_column = prediction_column
        if label_column:
            batch.label_column = label_column
        if version:
            batch.version = version
        batch.reference = reference
        batch.labels = labels
        yield batch


def rows_to_columns(rows: Sequence[Mapping[str, Any]]) -> Dict[str, List[Any]]:
    """Rows (one mapping each) as columns; a key a row lacks is a missing value there."""
    names: Dict[str, None] = {}
    for row in rows:
        for key in row:
            names.setdefault(str(key), None)
    return {name: [row.get(name) for row in rows] for name in names}
