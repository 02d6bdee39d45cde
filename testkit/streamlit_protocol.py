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


class Session:
    """One browser tab kept open: a websocket that asks for a script run per page, as a click
    on a page in the sidebar does (the browser reconnects only on a reload)."""

    def __init__(self, base_url: str, *, cookies: dict[str, str] | None = None,
                 timeout: float = 120.0) -> None:
        self.ws_url = base_url.replace("http://", "ws://").rstrip("/") + "/_stcore/stream"
        self.origin = base_url.rstrip("/")
        self.cookies = cookies or {}
        self.timeout = timeout
        self._ws = None
        self.tabs: dict[str, str] = {}  # a keyed st.tabs' key -> its widget id, as last seen

    async def __aenter__(self) -> Session:
        self._ws = await websockets.connect(
            self.ws_url, subprotocols=["streamlit"], origin=self.origin,
            additional_headers=_cookie_header(self.cookies), max_size=None,
            open_timeout=self.timeout)
        return self

    async def __aexit__(self, *exc) -> None:
        await self._ws.close()

    async def view(self, path: str = "", query: str = "", *,
                   tabs: dict[str, str] | None = None) -> View:
        """Run `path`?`query` ("" the default page) and wait for the script's end. `tabs`
        ({key: label}) opens tabs of keyed lazy st.tabs this session has seen (their widget
        ids, as last drawn), as a click on each does (widgets not named keep their defaults).
        A new Session's first view is a reload's; its seconds count from sending."""
        start = time.perf_counter()
        msg = BackMsg()
        msg.rerun_script.query_string = query
        msg.rerun_script.page_name = path
        for key, label in (tabs or {}).items():
            if key not in self.tabs:
                raise KeyError(f"no st.tabs with key {key!r} in the last view")
            state = msg.rerun_script.widget_states.widgets.add()
            state.id, state.string_value = self.tabs[key], label
        await self._ws.send(msg.SerializeToString())
        messages = deltas = 0
        exception = None
        status = "timeout"
        try:
            async with asyncio.timeout(self.timeout):
                async for data in self._ws:
                    if isinstance(data, str):
                        continue
                    fwd = ForwardMsg()
                    fwd.ParseFromString(data)
                    messages += 1
                    kind = fwd.WhichOneof("type")
                    if kind == "delta":
                        deltas += 1
                        block = fwd.delta.add_block
                        if block.WhichOneof("type") == "tab_container" and block.id:
                            self.tabs[block.id.split("-", 2)[-1]] = block.id
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

