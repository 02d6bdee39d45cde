"""Creating datasets from the dashboard: one form per kind of source, the options every
source shares, uploads saved to a temporary folder in the workspace, and a progress bar
driven by the engine's progress callback. The build itself runs in a worker process (a job),
so a huge or hostile upload can never exhaust this process's memory."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard import session
from dashboard.widgets import camera_shots, clear_shots
from engine.datasets import SOURCES, Dataset, DatasetError, DatasetOptions, default_options
from engine.datasets.class_zip import class_folders_zip
from engine.datasets.errors import DownloadUnavailable
from engine.datasets.options import MAX_SIDE
from engine.images.loading import RESIZE_MODES
from engine.jobs.build_dataset import build_dataset_in_worker  # decoding never runs here
from engine.state.workspace import studio_home

DOWNLOADS = [name for name in SOURCES if name not in ("digits-sample", "idx", "folder")]
RESIZE_HELP = {
    "squash": "stretch to the size (aspect ratio changes)",
    "crop": "scale to cover, then cut the centre",
    "fill": "scale to fit, then pad the borders",
    "half_crop": "half crop, half fill (as DIGITS did)",
}
IDX_FILES = {"train_images": "Training images", "train_labels": "Training labels",
             "test_images": "Test images (optional)", "test_labels": "Test labels (optional)"}

# (file name, content) of one uploaded file: what the helpers need, with or without Streamlit.
Upload = tuple[str, bytes]
Progress = Callable[[float, str], None]


# --- helpers that need no widgets (tested directly) ---------------------------------------------


def safe_filename(name: str) -> str:
    """A file name from a browser, reduced to its last part and harmless characters."""
    base = Path(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^\w.\-]", "_", base).lstrip(".")
    return cleaned or "upload"


def create_from_uploads(name: str, source: str, uploads: dict[str, Upload],
                        options: DatasetOptions, owner: str | None,
                        progress: Progress | None = None,
                        home: str | Path | None = None) -> Dataset:
    """Save uploads to a temporary folder inside the workspace (same disk, so no surprise
    quota elsewhere), build the dataset from them, and always remove the folder."""
    uploads_root = studio_home(home) / "uploads"
    uploads_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=uploads_root, prefix="tmp-") as tmp:
        args: dict[str, Any] = {}
        for arg, (filename, content) in uploads.items():
            folder = Path(tmp) / arg  # one folder per argument: equal file names never clash
            folder.mkdir()
            path = folder / safe_filename(filename)
            path.write_bytes(content)
            args[arg] = str(path)
        return build_dataset_in_worker(name, source, args, options, owner=owner, home=home,
                                       progress=progress)


# --- widgets ------------------------------------------------------------------------------------


def options_inputs(prefix: str, defaults: DatasetOptions) -> dict[str, Any]:
    """Every option the engine has, as widgets keyed by `prefix` (values stay after errors)."""
    c1, c2, c3 = st.columns(3)
    height = c1.number_input("Image height (px)", 1, MAX_SIDE, defaults.height,
                             key=f"{prefix}_height")
    width = c2.number_input("Image width (px)", 1, MAX_SIDE, defaults.width,
                            key=f"{prefix}_width")
    colour = c3.radio("Colour", ["Grayscale", "Colour (RGB)"], index=int(defaults.channels == 3),
                      key=f"{prefix}_colour", horizontal=True)
    c1, c2, c3 = st.columns(3)
    resize_mode = c1.selectbox("Resize mode", RESIZE_MODES,
                               index=RESIZE_MODES.index(defaults.resize_mode),
                               format_func=lambda m: f"{m}: {RESIZE_HELP.get(m, '')}",
                               key=f"{prefix}_resize")
    val = c2.number_input("Validation %", 0.0, 99.0, defaults.val_percent, step=5.0,
                          key=f"{prefix}_val")
    test = c3.number_input("Test %", 0.0, 99.0, defaults.test_percent, step=5.0,
                           key=f"{prefix}_test",
                           help="Carved from the training images when the source has no test "
                                "split, or when its test split is not used.")
    c1, c2, c3 = st.columns(3)
    min_pc = c1.number_input("Min images per class", 1, None, defaults.min_per_class,
                             key=f"{prefix}_min")
    max_pc = c2.number_input("Max images per class (0 = all)", 0, None,
                             defaults.max_per_class or 0, key=f"{prefix}_max",
                             help="Caps each class, chosen at random with the seed: the lab's "
                                  "small dataset.")
    seed = c3.number_input("Seed", 0, 2**31 - 1, defaults.seed, key=f"{prefix}_seed")
    c1, c2 = st.columns(2)
    use_test = c1.checkbox("Use the source's test split", defaults.use_source_test,
                           key=f"{prefix}_use_test")
    inverted = c2.checkbox("Add inverted copies (255 - x) of train and val images",
                           defaults.add_inverted, key=f"{prefix}_inverted")
    return {"height": int(height), "width": int(width),
            "channels": 3 if colour.startswith("Colour") else 1, "resize_mode": resize_mode,
            "val_percent": float(val), "test_percent": float(test),
            "use_source_test": bool(use_test), "min_per_class": int(min_pc),
            "max_per_class": int(max_pc) or None, "add_inverted": bool(inverted),
            "seed": int(seed)}


def build(name: str, run: Callable[[Progress], Dataset]) -> Dataset | None:
    """Run a build with a progress bar; errors become st.error (the form keeps its values)."""
    bar = st.progress(0.0, text=f"Creating {name!r}…")

    def report(fraction: float, message: str) -> None:
        bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)

    try:
        ds = run(report)
    except DownloadUnavailable as e:  # its own message names CLI flags: say it with our tabs
        bar.empty()
        st.error(f"Could not download {e.title} (no network?). Without a network, use the "
                 "**Offline sample**, **Folder / zip upload** or **IDX files** tab.")
        return None
    except (DatasetError, ValueError) as e:
        bar.empty()
        st.error(f"Could not create the dataset: {e}")
        return None
    except Exception as e:  # noqa: BLE001 - anything else still must not crash the page
        bar.empty()
        st.error(f"Unexpected error while creating the dataset: {type(e).__name__}: {e}")
        return None
    st.success(f"Created {ds.name!r}: {len(ds):,} images in {ds.num_classes} classes.")
    return ds


def _options(raw: dict[str, Any]) -> DatasetOptions | None:
    try:
        return DatasetOptions(**raw)
    except DatasetError as e:
        st.error(f"Check the options: {e}")
        return None


def _files(uploads: dict[str, Any]) -> dict[str, Upload]:
    """The chosen files of a form's uploaders, as (file name, content)."""
    return {arg: (f.name, f.getvalue()) for arg, f in uploads.items() if f is not None}


def _create(name: str, source: str, raw: dict[str, Any], files: dict[str, Upload] | None = None
            ) -> Dataset | None:
    """Common path of every form: signed-in user, valid options, then the build."""
    owner = session.require_user("create a dataset")
    if not owner:
        return None
    name = name.strip()
    if not name:
        st.error("Give the dataset a name.")
        return None
    options = _options(raw)
    if options is None:
        return None
    if files is None:
        return build(name, lambda report: build_dataset_in_worker(
            name, source, None, options, owner=owner, progress=report))
    return build(name, lambda report: create_from_uploads(name, source, files, options, owner,
                                                          report))


# Enter in a form's box does not submit it (a half-filled form went off that way): only the
# form's button does (enter_to_submit=False on every form with several fields).


def offline_form() -> Dataset | None:
    st.caption(SOURCES["digits-sample"])
    with st.form("ds_offline_form", enter_to_submit=False):
        name = st.text_input("Name", "digits", key="ds_off_name")
        with st.expander("Options"):
            raw = options_inputs("ds_opt_off", default_options("digits-sample"))
        if st.form_submit_button("Create dataset", type="primary", key="ds_off_submit"):
            return _create(name, "digits-sample", raw)
    return None


def download_form() -> Dataset | None:
    source = st.selectbox("Dataset", DOWNLOADS, key="ds_dl_source",
                          format_func=lambda s: f"{s}: {SOURCES[s]}")
    with st.form("ds_download_form", enter_to_submit=False):
        name = st.text_input("Name (blank: the dataset's name)", key="ds_dl_name")
        with st.expander("Options"):
            raw = options_inputs(f"ds_opt_dl_{source}", default_options(source))
        if st.form_submit_button("Download and create", type="primary", key="ds_dl_submit"):
            return _create(name.strip() or source, source, raw)
    return None


def folder_form() -> Dataset | None:
    st.caption("A .zip holding one folder per class (the folder name is the class). Optional "
               "zips with the same class folders give the validation and test images.")
    with st.form("ds_folder_form", enter_to_submit=False):
        name = st.text_input("Name (blank: the zip's name)", key="ds_zip_name")
        train = st.file_uploader("Training images (.zip)", type=["zip"], key="ds_zip_train")
        c1, c2 = st.columns(2)
        val = c1.file_uploader("Validation images (.zip, optional)", type=["zip"],
                               key="ds_zip_val")
        test = c2.file_uploader("Test images (.zip, optional)", type=["zip"], key="ds_zip_test")
        with st.expander("Options"):
            raw = options_inputs("ds_opt_zip", default_options("folder"))
        if st.form_submit_button("Upload and create", type="primary", key="ds_zip_submit"):
            if train is None:
                st.error("Choose a .zip of training images.")
                return None
            name = name.strip() or Path(safe_filename(train.name)).stem
            return _create(name, "folder", raw, _files({"path": train, "val_path": val,
                                                        "test_path": test}))
    return None


def idx_form() -> Dataset | None:
    st.caption("IDX files as MNIST ships them, gzip-compressed (.gz) or raw: a training pair, "
               "and optionally a test pair.")
    with st.form("ds_idx_form", enter_to_submit=False):
        name = st.text_input("Name", key="ds_idx_name")
        cols = st.columns(2)
        files = {arg: cols[i % 2].file_uploader(label, key=f"ds_idx_{arg}")
                 for i, (arg, label) in enumerate(IDX_FILES.items())}
        with st.expander("Options"):
            raw = options_inputs("ds_opt_idx", default_options("idx"))
        if st.form_submit_button("Upload and create", type="primary", key="ds_idx_submit"):
            missing = [IDX_FILES[a] for a in ("train_images", "train_labels") if not files[a]]
            if missing:
                st.error(f"Choose the {' and '.join(m.lower() for m in missing)} files.")
                return None
            if bool(files["test_images"]) != bool(files["test_labels"]):
                st.error("Test images and test labels go together: upload both or neither.")
                return None
            return _create(name, "idx", raw, _files(files))
    return None


def camera_form() -> Dataset | None:
    """A dataset made only of camera pictures, class by class (Teachable Machine's way)."""
    st.caption("Type a class, take a few pictures of it, then the next class; at least two "
               "classes. The pictures become a dataset like an uploaded zip of class folders.")
    c1, c2 = st.columns(2)
    label = c1.text_input("Class of the next pictures", "class 1", key="ds_cam_label")
    name = c2.text_input("Dataset name", "camera", key="ds_cam_name")
    shots = camera_shots(label.strip(), "ds", "Turn the camera on")
    with st.expander("Options"):
        raw = options_inputs("ds_opt_cam", DatasetOptions(height=64, width=64, channels=3))
    if not st.button(f"Create dataset ({len(shots)} pictures)", type="primary",
                     key="ds_cam_submit", disabled=not shots):
        return None
    try:
        archive = class_folders_zip(shots)
    except DatasetError as e:
        st.error(str(e))
        return None
    made = _create(name, "folder", raw, {"path": ("camera.zip", archive)})
    if made is not None:
        clear_shots("ds")
    return made


def create_section() -> Dataset | None:
    """The Create tabs; returns the dataset made in this run, if any."""
    if not session.current_user():
        st.info("Sign in (sidebar) to create datasets; you can browse without signing in.")
    offline, download, folder, idx, camera = st.tabs(
        ["Offline sample", "Standard download", "Folder / zip upload", "IDX files", "Camera"])
    made = None
    with offline:
        made = offline_form() or made
    with download:
        made = download_form() or made
    with folder:
        made = folder_form() or made
    with idx:
        made = idx_form() or made
    with camera:
        made = camera_form() or made
    return made
