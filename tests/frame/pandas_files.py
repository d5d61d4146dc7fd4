"""Write the same DataFrames as parquet and as an Arrow IPC file, and what pandas reads back.

Usage: pandas_files.py DIR. For each case NAME it writes DIR/NAME.parquet, DIR/NAME.arrow and
DIR/NAME.json: the dtypes pandas shows after reading the parquet file and its RangeIndex
(start, step, name). Both files of a case carry the same "pandas" metadata, so a reader that
takes its facts from that metadata must find the same dtypes and index in both.
"""
import json
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq


def frame():
    df = pd.DataFrame({
        "nullable_int": pd.array([1, None, 3], dtype="Int64"),
        "flag": pd.array([True, None, False], dtype="boolean"),
        "text": pd.array(["a", None, "c"], dtype="string"),
        "small": pd.array([1.5, None, 2.0], dtype="Float32"),
        "plain": [1, 2, 3],
        "holes": [1.0, None, 3.0],
        "cat": pd.Categorical(["x", "y", "x"], ordered=True),
        "when": pd.to_datetime([0, 1, 2], unit="s").tz_localize("Europe/Paris"),
    })
    df.index = pd.RangeIndex(5, 5 + 3 * 3, 3, name="row")
    return df


def with_metadata(table, edit):
    meta = json.loads(table.schema.metadata[b"pandas"])
    edit(meta)
    return table.replace_schema_metadata({b"pandas": json.dumps(meta).encode()})


def step_zero(meta):
    meta["index_columns"][0]["step"] = 0


def write(out_dir, name, table, df):
    """The table as NAME.parquet and NAME.arrow, and df's dtypes and index as NAME.json."""
    pq.write_table(table, f"{out_dir}/{name}.parquet")
    feather.write_feather(table, f"{out_dir}/{name}.arrow", compression="uncompressed")
    index = df.index
    expected = {"dtypes": {c: str(t) for c, t in df.dtypes.items()},
                "index": {"start": index.start, "step": index.step, "name": index.name}}
    with open(f"{out_dir}/{name}.json", "w") as f:
        json.dump(expected, f)


def main(out_dir):
    table = pa.Table.from_pandas(frame())
    write(out_dir, "typed", table, table.to_pandas())
    # pandas refuses RangeIndex(step=0) ("Step must not be zero"); frames take the data with
    # the default index (pandas_meta.c)
    write(out_dir, "step_zero", with_metadata(table, step_zero),
          table.to_pandas().reset_index(drop=True))


if __name__ == "__main__":
    main(sys.argv[1])
