"""frame_summary -- the columns of a cached frame, computed next to the data."""

import pandas as pd


def main(cache, key: str):
    """One row per column of the frame at `key`: its name, dtype and non-null count."""
    frame = cache[key]
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{key} is not a frame")
    return pd.DataFrame({
        "column": [str(c) for c in frame.columns],
        "dtype": [str(t) for t in frame.dtypes],
        "non_null": [int(n) for n in frame.notna().sum()],
    })
