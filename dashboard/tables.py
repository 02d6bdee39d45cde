"""`draw`, which draws a table (st.dataframe) from a cache of its Arrow form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pyarrow as pa
import streamlit as st
from streamlit import dataframe_util

from dashboard import cache_keys


@st.cache_resource(max_entries=1000, show_spinner=False)
def _arrow(name: str, key: Any, _args: tuple, _build: Callable[..., pd.DataFrame]) -> pa.Table:
    """The table as the Arrow Streamlit sends (index and all: Streamlit's own conversion).
    A resource, not data: Arrow tables are immutable, so every rerun shares one instead of
    unpickling a copy."""
    return dataframe_util.convert_pandas_df_to_arrow_table(_build(*_args))


def draw(where: Any, build: Callable[..., pd.DataFrame], *args: Any, **options: Any) -> Any:
    """`where.dataframe(build(*args), **options)`, the DataFrame's Arrow form cached on the
    builder and its arguments (what the table shows): building a small DataFrame and
    converting it was most of what a table cost a rerun (bench/server_cost.py)."""
    table = _arrow(*cache_keys.key(build, args), args, build)
    return where.dataframe(table, **options)
