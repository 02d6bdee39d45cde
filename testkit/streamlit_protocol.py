"""A Streamlit client without a browser: one page view over Streamlit's own websocket protocol.

A browser opening a page connects to `/_stcore/stream` (subprotocol "streamlit"), sends a
BackMsg asking for a script run (`rerun_script`: the page's URL path and query string) and
receives ForwardMsgs (new_session, deltas, ..., script_finished). This does the same with
`websockets` and Streamlit's protobuf messages, so a load generator can hold 50 sessions on a
2-core machine where 50 Chromium renderers could not run beside the server. What it does not
do: draw (no JavaScript runs, so custom components such as the drawing canvas send nothing).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

FINISHED = {"FINISHED_SUCCESSFULLY", "FINISHED_WITH_COMPILE_ERROR"}


@dataclass
class View:
    """One page view: seconds from connecting to the script's end, what came back."""

    seconds: float
    messages: int
    deltas: int
    finished: str  # the script_finished status, or "timeout"
    exception: str | None  # an exception element's message, if the page showed one


def _cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}


async def view(base_url: str, path: str = "", query: str = "", *,
               cookies: dict[str, str] | None = None, timeout: float = 120.0) -> View:
    """Open `base_url`/`path`?`query` as a new browser session would and wait for its run.

    `path` is the page's url_path (st.navigation), "" for the default page."""
    ws_url = base_url.replace("http://", "ws://").rstrip("/") + "/_stcore/stream"
    origin = base_url.rstrip("/")
    start = time.perf_counter()
    messages = deltas = 0
    exception = None
    async with websockets.connect(ws_url, subprotocols=["streamlit"], origin=origin,
                                  additional_headers=_cookie_header(cookies or {}),
                                  max_size=None, open_timeout=timeout) as ws:
        msg = BackMsg()
        msg.rerun_script.query_string = query
        msg.rerun_script.page_name = path
        await ws.send(msg.SerializeToString())
        status = "timeout"
        try:
            async with asyncio.timeout(timeout):
                async for data in ws:
                    if isinstance(data, str):
                        continue
                    fwd = ForwardMsg()
                    fwd.ParseFromString(data)
                    messages += 1
                    kind = fwd.WhichOneof("type")
                    if kind == "delta":
                        deltas += 1
                        element = fwd.delta.new_element
                        if element.WhichOneof("type") == "exception" and exception is None:
                            exception = element.exception.message
                    elif kind == "script_finished":
                        name = ForwardMsg.ScriptFinishedStatus.Name(fwd.script_finished)
                        if name in FINISHED:
                            status = name
                            break
        except TimeoutError:
            pass
    return View(time.perf_counter() - start, messages, deltas, status, exception)
