"""Classify: draw a digit or upload images, see what the network sees and what it answers, look
inside the model, and keep drawings on a probe board to compare experiments later."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, cpu_budget, nav, session
from dashboard.widgets import choose_trained_job, usable_jobs
from engine import jobs
from engine.evaluation import probes
from engine.images import pictures
from engine.inference import backends, inside, live
from engine.inference.results import Prediction
from engine.service import classify as service
from engine.training.checkpoint import checkpoint_label, list_checkpoints
from trt import backends as trt_backends
from trt.runtime import NeedsGPU

CANVAS_SIZE = 280
# style -> (ink, paper, polarity that turns it into white-on-black)
STYLES: dict[str, tuple[str, str, str]] = {
    "MNIST": ("#FFFFFF", "#000000", "as-is"),
    "paper": ("#000000", "#FFFFFF", "invert"),
}
# AppTest cannot drive the canvas component: tests put an RGBA array here to stand in for it.
CANVAS_STAND_IN = "classify_canvas_image"
UPLOAD_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"]
NEW_BOARD = "__new__"
# The polarity choices on uploads: "as-is" shows the image as a network trained without
# inverted images really sees a photo of dark ink on paper (the lab's lesson).
POLARITY_LABELS = {"auto": "auto", "as-is": "as the network was trained (as-is)",
                   "invert": "invert"}
TILE_GAP = 6  # pixels between feature-map and filter tiles
# Room above the canvas for its toolbar (undo, redo, clear), which floats 2.65rem above the
# canvas on hover: without it the toolbar covers the stroke-width slider.
TOOLBAR_ROOM = '<div class="cl-toolbar-room" style="height:2.9rem"></div>'
CAMERA_MODES = {"picture": "Take a picture", "live": "Live video"}
LIVE_KEY, LIVE_KEPT = "cl_live_classifier", "cl_live_kept"
# How often the answer beside the live video is redrawn (the video shows it on every frame).
# Cheap since Streamlit's garbage collection after every run is off (.streamlit/config.toml):
# a stream costs 17% of a core at twice a second, against 55% with it.
LIVE_POLL_S = 0.5
# The server decodes, answers on and re-encodes every frame: 10 a second at 640x480 is smooth
# enough to aim a digit at the camera, and a third of a camera's usual 30.
LIVE_VIDEO = {"width": {"ideal": 640}, "height": {"ideal": 480}, "frameRate": {"max": 10}}
trt_backends.register()  # ONNX Runtime and TensorRT join the backend choice


# --- choosing the model ---------------------------------------------------------------------


def _choose_model() -> tuple[str, Any] | None:
    """The checkpoint chosen (job, then one of its checkpoints), and a column for the backend."""
    if not usable_jobs():
        return choose_trained_job("classify", "job", "cl_job")
    c1, c2, c3 = st.columns([3, 2, 2])
    job_id = choose_trained_job("classify", "job", "cl_job", c1)
    run = jobs.job_dir(job_id)
    ckpts = list_checkpoints(run) or [run / "last.pt"]
    path = c2.selectbox("Checkpoint", ckpts, format_func=lambda p: checkpoint_label(run, p),
                        key=f"cl_ckpt_{job_id}")
    return str(path), c3


def backend_choices(checkpoint: str) -> tuple[dict[str, str], dict[str, str]]:
    """The backends usable for this checkpoint here (name -> label), and the registered ones
    that are not, with why (label -> reason)."""
    choices = service.backend_choices(checkpoint, trt_backends)
    return choices.usable, choices.unavailable


def _choose_backend(checkpoint: str, column: Any) -> backends.Backend | None:
    usable, why = backend_choices(checkpoint)
    kind = column.selectbox("Backend", list(usable), format_func=usable.get, key="cl_backend")
    for label, reason in why.items():
        st.caption(f"{label} is not available: {reason}")
    if any("Deploy page" in reason for reason in why.values()):
        st.page_link(nav.page("deploy"), label="Open the Deploy page",
                     query_params={"id": st.session_state.get("cl_job", "")})
    try:
        return service.open_backend(kind, checkpoint, trt_backends)
    except NeedsGPU as e:  # raced with the check above, or CUDA went away: say so plainly
        st.warning(str(e))
        return None
    except Exception as e:  # a broken or foreign checkpoint: say so, keep the page up
        st.error(f"Could not load {checkpoint}: {e}")
        return None


# --- drawing --------------------------------------------------------------------------------


def canvas_image(json_data: dict | None, image_data: np.ndarray | None) -> np.ndarray | None:
    """The canvas's RGBA pixels, or None while it holds no strokes."""
    if image_data is None or not (json_data or {}).get("objects"):
        return None
    return np.asarray(image_data)


def canvas_prediction(backend: backends.Backend, image: np.ndarray | None, style: str,
                      top_k: int = 5) -> Prediction | None:
    """What the page shows for a canvas: a result, or None for an empty drawing."""
    if image is None:
        return None
    return service.classify_drawing(backend, image, STYLES[style][2], top_k=top_k,
                                    look_inside=False).prediction


def _canvas(style: str, stroke: int) -> np.ndarray | None:
    from streamlit_drawable_canvas import st_canvas  # needs a running Streamlit: import here

    ink, paper, _ = STYLES[style]
    result = st_canvas(stroke_width=stroke, stroke_color=ink, background_color=paper,
                       height=CANVAS_SIZE, width=CANVAS_SIZE, drawing_mode="freedraw",
                       update_streamlit=True, return_image_data=True, key=f"cl_canvas_{style}")
    stand_in = st.session_state.get(CANVAS_STAND_IN)
    if stand_in is not None:
        return np.asarray(stand_in)
    return canvas_image(result.json_data, result.image_data)


def _draw(backend: backends.Backend, checkpoint: str) -> None:
    left, mid, right = st.columns([3, 2, 3])
    with left:
        style = st.radio("Style", list(STYLES), horizontal=True, key="cl_style",
                         help="MNIST: white ink on black, as MNIST was made. paper: black ink "
                              "on white, inverted before the network sees it.")
        stroke = st.slider("Stroke width", 5, 40, 20, key="cl_stroke")
        st.html(TOOLBAR_ROOM)
        image = _canvas(style, stroke)
        st.caption("Draw with the mouse; undo, redo and clear are in the toolbar that appears "
                   "above the canvas when the mouse is over it.")
    shown = None if image is None else service.classify_drawing(
        backend, image, STYLES[style][2], checkpoint=checkpoint)
    if shown is None or shown.prediction is None:
        mid.info("Draw something: the prediction appears when a stroke ends.")
        return
    _show(shown.prediction, mid, right)
    _inside(shown.inside, "draw")
    _add_to_board(shown, backend.classes, "canvas", "draw")


def _show(result: Prediction, mid: Any, right: Any) -> None:
    with mid:
        st.markdown("**What the network sees**")
        st.image(pictures.enlarge(result.input, 196), width=196, output_format="PNG",
                 caption=f"{result.input.shape[1]}x{result.input.shape[0]} input")
    with right:
        st.metric("Prediction", result.label, confidence_text(result), delta_color="off")
        charts.draw(st, charts.top_k, list(result.top))


# --- uploads --------------------------------------------------------------------------------


def _framing_options(backend: backends.Backend, key: str) -> tuple[bool, str]:
    """MNIST framing on or off, and the polarity: the same choices for uploads and camera."""
    c, h, _ = backend.contract.input_shape
    c1, c2 = st.columns([1, 2])
    digit = c1.checkbox("Frame like MNIST (digits)", value=c == 1 and h <= 32, key=f"{key}_digit",
                        help="Clean the page (paper and ink levels, uneven light, specks), "
                             "crop to the ink, fit in 20x20, centre by mass in 28x28.")
    polarity = c2.radio("Polarity", list(POLARITY_LABELS), format_func=POLARITY_LABELS.get,
                        horizontal=True, key=f"{key}_polarity",
                        help="auto turns dark ink on paper into white on black, as MNIST. "
                             "'as the network was trained' shows the image as it is: a "
                             "network trained without inverted images fails on dark ink.")
    return digit, polarity


def _upload(backend: backends.Backend, checkpoint: str) -> None:
    files = st.file_uploader("Images", type=UPLOAD_TYPES, accept_multiple_files=True,
                             key="cl_upload")
    digit, polarity = _framing_options(backend, "cl")
    if not files:
        st.caption("Upload one image for the full view, or many for a table.")
        return
    if len(files) == 1:
        _show_upload(backend, service.classify_upload(
            backend, files[0].name, files[0].getvalue(), digit, polarity,
            checkpoint=checkpoint), "upload")
        return
    results = service.classify_uploads(backend, [(f.name, f.getvalue()) for f in files], digit,
                                       polarity)
    st.dataframe(uploads_table(results), hide_index=True, width="stretch")


def _camera(backend: backends.Backend, checkpoint: str) -> None:
    """A picture from the camera, classified as it is taken, with the same view as an upload;
    or live video, each frame classified as it plays. The camera starts only when asked:
    opening Classify never asks for it."""
    if not st.toggle("Use the camera", key="cl_cam_on",
                     help="Each picture you take is classified at once; take another to "
                          "try again. Live video classifies what the camera sees as it plays."):
        st.caption("Turn the camera on, hold a digit on paper (or an object) in front of it "
                   "and take a picture, or watch it classified live.")
        return
    mode = st.radio("Camera", list(CAMERA_MODES), format_func=CAMERA_MODES.get,
                    horizontal=True, key="cl_cam_mode", label_visibility="collapsed")
    if mode == "live":
        _live(backend, checkpoint)
        return
    picture = st.camera_input("Point the camera at what to classify", key="cl_cam")
    digit, polarity = _framing_options(backend, "cl_cam")
    if picture is None:
        return
    _show_upload(backend, service.classify_upload(backend, "camera.jpg", picture.getvalue(),
                                                  digit, polarity, checkpoint=checkpoint),
                 "camera")


def _live(backend: backends.Backend, checkpoint: str) -> None:
    """Live video through WebRTC (streamlit-webrtc): the answer is drawn on the video, and
    what the network sees and its top-5 follow beside it; "Keep this frame" opens the full
    views (inside the model, add to a probe board) on one frame."""
    from streamlit_webrtc import WebRtcMode, webrtc_streamer  # loads aiortc: only when asked

    digit, polarity = _framing_options(backend, "cl_live")
    try:
        servers = live.ice_servers()
    except ValueError as e:
        st.error(str(e))
        return
    wanted = (checkpoint, backend.name, digit, polarity)
    classifier = st.session_state.get(LIVE_KEY)
    if classifier is None or classifier[0] != wanted:
        classifier = (wanted, live.LiveClassifier(backend, digit, polarity))
        st.session_state[LIVE_KEY] = classifier
    video, answer = st.columns([3, 2])
    with video:
        streamer = webrtc_streamer(
            key="cl_live", mode=WebRtcMode.SENDRECV,
            video_frame_callback=_frame_callback(classifier[1]),
            media_stream_constraints={"video": LIVE_VIDEO, "audio": False},
            rtc_configuration={"iceServers": servers},
            video_html_attrs={"autoPlay": True, "controls": False, "style": {"width": "100%"}})
    with answer:
        if streamer.state.playing:
            cpu_budget.fragment(_live_result, run_every=LIVE_POLL_S)(classifier[1])
        else:
            st.caption("Press START and allow the camera: each frame is classified as it "
                       f"plays (up to {1 / classifier[1].every_s:.0f} a second), the answer "
                       "drawn on the video and shown here.")
    kept = st.session_state.get(LIVE_KEPT)
    if kept is not None and kept[0] is classifier[1] and kept[1].result is not None:
        kept = kept[1]  # kept from this model and these settings (others are not shown)
        st.markdown("**The frame kept**")
        _show_upload(backend, service.classify_frame(backend, kept, digit, polarity,
                                                     checkpoint), "live")


def _frame_callback(classifier: live.LiveClassifier):
    def callback(frame):  # an av.VideoFrame, on streamlit-webrtc's thread: no st.* here
        import av

        shown = classifier.frame(frame.to_ndarray(format="rgb24"))
        return av.VideoFrame.from_ndarray(shown, format="rgb24")
    return callback


def _live_result(classifier: live.LiveClassifier) -> None:
    """Redrawn every LIVE_POLL_S while the video plays: the latest frame's answer."""
    state = classifier.latest()
    item = state.item
    if item is None:
        st.caption("Waiting for the first frame…")
        return
    st.caption(f"Live: {state.classified:,} frames classified of {state.seen:,} received.")
    if item.result is None:
        st.info(f"This frame: {item.error}.")
        return
    _show(item.result, st.container(), st.container())
    if st.button("Keep this frame", key="cl_live_keep",
                 help="Hold this frame below, with the views inside the model and a way to "
                      "add it to a probe board."):
        st.session_state[LIVE_KEPT] = (classifier, item)
        st.rerun(scope="app")


def _show_upload(backend: backends.Backend, shown: service.Classified, key: str) -> None:
    if shown.error:
        st.error(shown.error)
        return
    if shown.prediction is None:
        st.info(f"{shown.name}: {shown.warning}.")
        return
    if shown.crop is not None:
        original, cleaned, mid, right = st.columns(4)
        _show_framing(shown.crop, original, cleaned)
    else:
        mid, right = st.columns(2)
    _show(shown.prediction, mid, right)
    _inside(shown.inside, key)
    _add_to_board(shown, backend.classes, shown.name, key)


def _show_framing(crop: service.Crop, original: Any, cleaned: Any) -> None:
    """The crop box on the original, the cleaned page, and the polarity decision."""
    top, left, bottom, right = crop.box
    with original:
        st.markdown("**Original and crop box**")
        st.image(crop.overlay, width=240,
                 caption=f"{crop.original.width}x{crop.original.height}; the digit: rows "
                         f"{top}-{bottom}, columns {left}-{right}")
    with cleaned:
        st.markdown("**Cleaned page**")
        st.image(crop.cleaned, width=240,
                 caption="Light evened out, paper -> black, ink -> white, specks dropped")
    st.caption(f"Polarity {crop.polarity}.")


def confidence_text(result: Prediction, short: bool = False) -> str:
    """The confidence, calibrated, with the raw softmax beside it for a model with a fitted
    temperature (Evaluation tab: Calibrate), so "99%" is seen for what it was worth."""
    raw = result.raw_confidence
    if raw is None:
        return f"{result.confidence:.1%}" if short else f"{result.confidence:.1%} confidence"
    if short:
        return f"{result.confidence:.1%} (raw {raw:.1%})"
    return f"{result.confidence:.1%} calibrated · {raw:.1%} raw"


def uploads_table(results: list[service.Classified]) -> pd.DataFrame:
    """One row per file: top-1, confidence and top-5, or why there is none."""
    rows = []
    for u in results:
        r = u.prediction
        rows.append({"file": u.name, "top-1": r.label if r else "—",
                     "confidence": confidence_text(r, short=True) if r else "",
                     "top-5": ", ".join(f"{c} ({p:.0%})" for c, p in r.top) if r
                     else (u.reason or "")})
    return pd.DataFrame(rows, columns=["file", "top-1", "confidence", "top-5"])


# --- inside the model -----------------------------------------------------------------------


def _inside(view: service.InsideViews | None, key: str) -> None:
    """key: the input the views are of (draw, upload, camera), so two tabs can show them."""
    if view is None:
        return
    with st.expander("Inside the model: visualizations and statistics"):
        if view.problem:  # a checkpoint PyTorch cannot rebuild: said plainly
            st.warning(view.problem)
            return
        if view.note:  # ONNX Runtime or TensorRT answered: the views are PyTorch's
            st.info(view.note)
        c1, c2 = st.columns(2)
        c1.markdown("**Saliency** (where the answer is most sensitive to the input)")
        c1.image(view.saliency, width=196, output_format="PNG")
        if view.filters is not None:
            with c2:
                _tiles(f"First-layer filters ({len(view.filters)})", view.filters,
                       "filter", cols=10, cell=36, key=f"cl_zoom_{key}_filters")
        for name, maps in view.feature_maps:
            _tiles(f"Feature maps, layer {name} ({maps.shape[0]} x "
                   f"{maps.shape[1]}x{maps.shape[2]})", maps, "map", cols=10, cell=56,
                   key=f"cl_zoom_{key}_{name}")
        st.markdown("**Activation statistics per layer**")
        st.dataframe(stats_table(view.stats), hide_index=True, width="stretch")


def _tiles(title: str, maps: np.ndarray, what: str, cols: int, cell: int, key: str) -> None:
    """A grid with gaps between the tiles, and one tile enlarged on demand."""
    st.markdown(f"**{title}**")
    st.image(inside.grid(maps, cols=cols, cell=cell, pad=TILE_GAP), width="content",
             output_format="PNG")
    options = [0, *range(1, len(maps) + 1)]
    pick = st.selectbox(f"Enlarge a {what}", options, key=key,
                        format_func=lambda i: "—" if i == 0 else f"{what} {i}",
                        help=f"Numbered left to right, top to bottom: {what} 1 is top left.")
    if pick:
        one = maps[pick - 1]
        st.image(inside.grid(maps[pick - 1:pick], cols=1, cell=224, pad=0), width=224,
                 output_format="PNG")
        st.caption(f"{what} {pick} of {len(maps)}: values {float(one.min()):.3g} to "
                   f"{float(one.max()):.3g}")


def stats_table(stats: list[inside.LayerStats]) -> pd.DataFrame:
    return pd.DataFrame([{"layer": s.name, "output": " x ".join(map(str, s.shape)),
                          "mean": s.mean, "std": s.std, "min": s.min, "max": s.max,
                          "zero %": 100 * s.zero_fraction} for s in stats])


# --- probe boards ---------------------------------------------------------------------------


def _add_to_board(shown: service.Classified, classes: list[str], source: str, key: str) -> None:
    user = session.current_user()
    st.markdown("**Add to probe board**")
    if not user:
        st.caption("Sign in (sidebar) to keep this image on a probe board.")
        return
    mine = [b for b in probes.list_boards(user) if b["owner"] == user]
    options = [b["id"] for b in mine] + [NEW_BOARD]
    names = {b["id"]: b["name"] for b in mine} | {NEW_BOARD: "New board…"}
    # Once a probe is saved, the board it went to becomes the default choice (set before the
    # widget exists: Streamlit forbids changing a widget's value after it is drawn).
    pending = st.session_state.get("probes_last_board")
    if pending in options and st.session_state.get(f"cl_board_applied_{key}") != pending:
        st.session_state[f"cl_board_{key}"] = pending
        st.session_state[f"cl_board_applied_{key}"] = pending
    with st.form(f"cl_board_form_{key}"):
        c1, c2, c3 = st.columns(3)
        board = c1.selectbox("Board", options, format_func=names.get, key=f"cl_board_{key}")
        new_name = c2.text_input("New board name", value="My probes",
                                 key=f"cl_board_name_{key}")
        label = c3.selectbox("True label", classes, index=classes.index(shown.label),
                             key=f"cl_label_{key}")
        if st.form_submit_button("Add to probe board"):
            _save_probe(user, board, new_name, shown.png, label, shown.polarity, shown.digit,
                        source)


def _save_probe(user: str, board: str, new_name: str, png: bytes, label: str, polarity: str,
                digit: bool, source: str) -> None:
    try:
        if board == NEW_BOARD:
            board = probes.create_board(new_name, user)
        probes.add_probe(board, png, label, polarity, user=user, digit=digit, source=source)
    except (ValueError, PermissionError) as e:
        st.error(str(e))
        return
    st.session_state["probes_last_board"] = board
    st.success(f"Added to board “{probes.get_board(board, user)['name']}” as {label}.")
    st.page_link(nav.page("probes"), label="Open probe boards")


def render() -> None:
    st.title("Classify")
    chosen = _choose_model()
    if chosen is None:
        return
    backend = _choose_backend(*chosen)
    if backend is None:
        return
    draw, upload, camera = st.tabs(["Draw", "Upload", "Camera"])
    with draw:
        _draw(backend, chosen[0])
    with upload:
        _upload(backend, chosen[0])
    with camera:
        _camera(backend, chosen[0])
