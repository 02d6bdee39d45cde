"""New model: dataset, network (zoo or an edited spec), solver, schedule, augmentation,
device, sweep; Submit queues a job and opens its page. `?clone=JOB` pre-fills from a job."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st
import torch

from dashboard import charts, nav, session, widgets
from dashboard.views import lr_finder_panel, start_from
from dashboard.views.train_forms import choice, number, slider
from engine import jobs
from engine.datasets import list_datasets, open_dataset
from engine.devices import describe, list_devices
from engine.networks import (
    SpecError,
    dump_spec,
    parse_spec,
    spec_to_graphviz,
    validate_spec,
    zoo_info,
    zoo_spec,
)
from engine.text import parse_numbers
from engine.training import AugmentConfig, ConfigError, TrainConfig, lr_schedule
from engine.training.augment import augment_batch
from engine.training.presets import PRESETS, get_preset

DEFAULT_LR = {"sgd": 0.01, "nesterov": 0.01, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3,
              "adagrad": 0.01, "adadelta": 1.0}


# A preset's settings -> the form's widget keys (augmentation settings under "augment").
PRESET_KEYS = {"network": "nm_network", "solver": "nm_solver", "lr": "nm_lr",
               "momentum": "nm_mom", "weight_decay": "nm_wd", "lr_policy": "nm_policy",
               "warmup_epochs": "nm_warmup", "epochs": "nm_epochs", "batch_size": "nm_batch"}
PRESET_AUGMENT_KEYS = {"rotation": "nm_rot", "shift": "nm_shift", "shear": "nm_shear",
                       "zoom": "nm_zoom", "hflip": "nm_hflip", "vflip": "nm_vflip",
                       "invert": "nm_invert", "noise": "nm_noise"}


def _apply_preset(name: str) -> None:
    """Button callback (runs before the widgets exist): fill the form with a preset."""
    settings = get_preset(name).settings
    st.session_state["nm_custom"] = False
    for field, key in PRESET_KEYS.items():
        if field in settings:
            st.session_state[key] = settings[field]
    augment = AugmentConfig(**settings.get("augment", {}))
    for field, key in PRESET_AUGMENT_KEYS.items():
        st.session_state[key] = getattr(augment, field)
    st.session_state["nm_preset"] = name


def _presets() -> None:
    for name, preset in PRESETS.items():
        st.button(preset.title, key=f"nm_preset_{name}", on_click=_apply_preset, args=(name,),
                  help=preset.description)
    if applied := st.session_state.get("nm_preset"):
        st.caption(f"{get_preset(applied).title}: {get_preset(applied).description} "
                   "Change anything below before submitting.")


def _prefill() -> tuple[dict[str, Any], str | None]:
    """Defaults for the form: a cloned job's config, a retrain's start, else the defaults."""
    retrain = start_from.retrain_prefill()
    if retrain is not None:
        return retrain, None
    clone_id = st.query_params.get("clone")
    if clone_id:
        try:
            return jobs.get_job(clone_id, metrics=False, events=False,
                                 viewer=session.current_user()).config, clone_id
        except Exception as e:
            st.error(f"Cannot clone job {clone_id}: {e}")
    return TrainConfig(dataset="").to_dict(), None


def _index(options: list, value: Any) -> int:
    return options.index(value) if value in options else 0


def _network_section(base: dict, shape: tuple[int, int, int], classes: int,
                     clone_id: str | None = None) -> dict | str | None:
    """A zoo name or an edited spec, validated live; None while the spec is invalid."""
    names = [n["name"] for n in zoo_info()]
    descriptions = {n["name"]: n["description"] for n in zoo_info()}
    base_net = base.get("network", "lenet")
    custom = st.toggle("Customize the network", value=isinstance(base_net, dict),
                       key="nm_custom")
    # A cloned spec starts from the zoo network it names (if any), else LeNet.
    start = base_net if isinstance(base_net, str) else (
        base_net.get("name") if base_net.get("name") in names else "lenet")
    zoo_name = st.selectbox("Network", names, index=_index(names, start), key="nm_network",
                            format_func=lambda n: f"{n} — {descriptions[n]}")
    if not custom:
        network: dict | str = zoo_name
        spec = zoo_spec(zoo_name)
    else:
        default = dump_spec(base_net if isinstance(base_net, dict) and zoo_name == start
                            else zoo_spec(zoo_name))
        # The editor starts from the chosen zoo network (or the cloned job's spec): again
        # whenever either changes, and when the editor was gone from the page (Streamlit
        # drops a widget's text when the user opens another page).
        seed = (clone_id, zoo_name)
        if st.session_state.get("nm_spec_base") != seed or "nm_spec" not in st.session_state:
            st.session_state["nm_spec_base"] = seed
            st.session_state["nm_spec"] = default
        text = st.text_area("Network spec (YAML or JSON)", height=320,
                            key="nm_spec", help="A list of layers; shapes are worked out for you.")
        try:
            spec = parse_spec(text)
        except SpecError as e:
            st.error(f"Spec: {e}")
            return None
        network = spec
    try:
        rows = validate_spec(spec, shape, classes)
    except SpecError as e:
        st.error(f"Network: {e}")
        return None
    total = sum(r.params for r in rows)
    with st.expander(f"Layers: {len(rows)} layers, {total:,} parameters", expanded=custom):
        st.dataframe(
            [{"#": r.index, "layer": r.description, "output": " x ".join(map(str, r.output_shape)),
              "parameters": r.params} for r in rows], hide_index=True, width="stretch")
        st.graphviz_chart(spec_to_graphviz(spec, shape, classes))
    return network


def _solver_section(base: dict) -> dict[str, Any]:
    """Solver and schedule; every input's bounds and choices are the option's (train_forms)."""
    c1, c2, c3 = st.columns(3)
    solver = choice(c1, "Solver", "solver", base["solver"], key="nm_solver")
    lr = number(c2, "Base learning rate", "lr", base.get("lr") or DEFAULT_LR[solver],
                format="%.5f", key="nm_lr")
    momentum = number(c3, "Momentum", "momentum", base["momentum"], key="nm_mom")
    c1, c2, c3 = st.columns(3)
    weight_decay = number(c1, "Weight decay", "weight_decay", base["weight_decay"],
                          format="%.5f", key="nm_wd")
    policy = choice(c2, "Learning-rate policy", "lr_policy", base["lr_policy"],
                    key="nm_policy")
    warmup = number(c3, "Warm-up epochs", "warmup_epochs", base["warmup_epochs"],
                    key="nm_warmup")
    out = {"solver": solver, "lr": lr, "momentum": momentum, "weight_decay": weight_decay,
           "lr_policy": policy, "warmup_epochs": warmup, "step_size": base["step_size"],
           "gamma": base["gamma"], "power": base["power"], "milestones": base["milestones"]}
    c1, c2, c3 = st.columns(3)
    if policy in ("step", "sigmoid"):
        out["step_size"] = number(c1, "Step size (epochs)", "step_size", base["step_size"],
                                  key="nm_step")
    if policy in ("step", "multistep", "exp", "inv", "sigmoid"):
        # The range the policy picks: sigmoid takes a negative gamma, the others do not.
        out["gamma"] = number(c2, "Gamma", "gamma", base["gamma"], by_value=policy,
                              format="%.4f", key="nm_gamma")
    if policy in ("inv", "poly"):
        out["power"] = number(c3, "Power", "power", base["power"], key="nm_power")
    if policy == "multistep":
        text = c3.text_input("Milestones (epochs, comma-separated)",
                             ",".join(f"{m:g}" for m in base["milestones"]) or "5,8",
                             key="nm_milestones")
        try:
            out["milestones"] = parse_numbers(text, float, "Milestones")
        except ValueError as e:
            st.error(str(e))
    return out


def _augment_section(base: dict, dataset) -> dict[str, Any]:
    a = base.get("augment") or {}
    with st.expander("Data augmentation (online, on the training device)",
                     expanded=AugmentConfig(**a).active if a else False):
        c1, c2, c3, c4 = st.columns(4)
        aug = {
            "rotation": slider(c1, "Rotation (±degrees)", "augment.rotation",
                               a.get("rotation", 0), key="nm_rot"),
            "shift": slider(c2, "Shift (±fraction)", "augment.shift", a.get("shift", 0),
                            key="nm_shift"),
            "shear": slider(c3, "Shear (±degrees)", "augment.shear", a.get("shear", 0),
                            key="nm_shear"),
            "zoom": slider(c4, "Zoom (±fraction)", "augment.zoom", a.get("zoom", 0),
                           key="nm_zoom"),
        }
        c1, c2, c3, c4 = st.columns(4)
        aug["hflip"] = c1.checkbox("Horizontal flips", bool(a.get("hflip")), key="nm_hflip")
        aug["vflip"] = c2.checkbox("Vertical flips", bool(a.get("vflip")), key="nm_vflip")
        aug["invert"] = slider(c3, "Invert (probability)", "augment.invert",
                               a.get("invert", 0), key="nm_invert")
        aug["noise"] = slider(c4, "Noise (std)", "augment.noise", a.get("noise", 0),
                              key="nm_noise")
        cfg = AugmentConfig(**aug)
        if cfg.active and dataset is not None:
            st.caption("Preview: the same 8 training images, augmented")
            st.image(_preview(dataset, cfg), width=96)
    return aug


def _preview(dataset, cfg: AugmentConfig) -> list[np.ndarray]:
    idx = dataset.split("train")[:8]
    x = torch.from_numpy(np.asarray(dataset.images[np.sort(idx)])).permute(0, 3, 1, 2)
    out = augment_batch(x.float() / 255, cfg, torch.Generator().manual_seed(0))
    imgs = (out.clamp(0, 1) * 255).byte().permute(0, 2, 3, 1).numpy()
    return [np.kron(im, np.ones((3, 3, 1), np.uint8)).squeeze() for im in imgs]


def render() -> None:
    st.title("New image classification model")
    base, clone_id = _prefill()
    if clone_id:
        st.info(f"Cloning job {clone_id}: change what you want, then submit.")
    datasets = list_datasets(viewer=session.current_user())
    if not datasets:
        st.warning("No datasets yet: create one first.")
        st.page_link(nav.page("datasets"), label="Create a dataset")
        return
    names = [d["name"] for d in datasets]
    current = next((d["name"] for d in datasets if base.get("dataset") in (d["id"], d["name"])),
                   names[0])
    ds_name = st.selectbox("Dataset", names, index=names.index(current), key="nm_dataset")
    dataset = open_dataset(ds_name)
    st.caption(f"{dataset.num_classes} classes, input {' x '.join(map(str, dataset.shape))}, "
               f"{len(dataset.split('train'))} training images")

    _presets()
    st.subheader("Network")
    network = _network_section(base, tuple(dataset.shape), dataset.num_classes, clone_id)
    start = start_from.section(base)

    st.subheader("Solver")
    solver = _solver_section(base)
    c1, c2, c3, c4 = st.columns(4)
    epochs = number(c1, "Epochs", "epochs", base["epochs"], key="nm_epochs")
    batch = number(c2, "Batch size", "batch_size", base["batch_size"], key="nm_batch")
    seed = number(c3, "Seed", "seed", base["seed"], key="nm_seed")
    early = number(c4, "Early-stopping patience (0 = off)", "early_stopping",
                   base["early_stopping"], key="nm_early")
    preview = TrainConfig(dataset=ds_name, epochs=int(epochs), **solver)
    try:
        charts.draw(st, charts.schedule, lr_schedule(preview, points_per_epoch=8))
    except (ConfigError, ValueError, ZeroDivisionError) as e:
        st.error(f"Schedule: {e}")

    aug = _augment_section(base, dataset)

    st.subheader("Run")
    c1, c2, c3 = st.columns(3)
    machine = list_devices()
    devices = ["auto"] + [d["id"] for d in machine]
    labels = {"auto": "auto (a free GPU, else the CPU)",
              **{d["id"]: describe(d) for d in machine}}
    device = c1.selectbox("Device", devices, index=_index(devices, base["device"]),
                          format_func=labels.get, key="nm_device")
    gpus = sum(d["id"].startswith("cuda") for d in machine)
    count = 1
    if gpus > 1 and device != "cpu":  # data parallel: one job over several GPUs
        count = int(number(  # no more than the machine has
            c1, "GPUs for this job", "devices", base.get("devices") or 1, most=gpus,
            key="nm_devices", help="Data parallel (DDP): each GPU trains on its share of "
                                   "every batch; the batch size is the total over them."))
        if count > 1:
            device = "cuda"  # any free ones; the scheduler reserves them all at once
            c1.caption(f"{count} GPUs, {int(batch) // count}+ images each per step")
    precision = choice(c2, "Precision", "precision", base["precision"], key="nm_prec",
                       help="bf16/fp16 mixed precision needs a CUDA device")
    compile_ = c3.checkbox("torch.compile", bool(base["compile"]), key="nm_compile")
    c1, c2, c3 = st.columns(3)
    val_interval = number(c1, "Validation interval (epochs)", "val_interval",
                          base["val_interval"], key="nm_val_int")
    ckpt_interval = number(c2, "Checkpoint interval (epochs)", "checkpoint_interval",
                           base["checkpoint_interval"], key="nm_ckpt_int")
    name = c3.text_input("Job name", (base.get("name") or "") + (" (clone)" if clone_id else ""),
                         key="nm_name")
    with st.expander("Sweep: one job per combination"):
        sweep_lrs = st.text_input("Learning rates (comma-separated, e.g. 0.1,0.01)",
                                  key="nm_sweep_lr")
        sweep_bs = st.text_input("Batch sizes (comma-separated, e.g. 32,64)", key="nm_sweep_bs")
        st.page_link(nav.page("study"), icon="🔎",
                     label="Or a search that learns where to look: a study (Optuna TPE, pruning)")

    lr_finder_panel.section(dataset.id, network, {
        **solver, "batch_size": int(batch), "seed": int(seed), "augment": aug,
        "device": device, "devices": count, "precision": precision, **start})

    if not st.button("Submit", type="primary", key="nm_submit"):
        return
    user = session.require_user("submit a job")
    if not user or network is None:
        if network is None:
            st.error("Fix the network spec first.")
        return
    config = {**TrainConfig(dataset=dataset.id).to_dict(), **solver, "dataset": dataset.id,
              "network": network, "epochs": int(epochs), "batch_size": int(batch),
              "seed": int(seed), "early_stopping": int(early), "augment": aug,
              "device": device, "devices": count, "precision": precision,
              "compile": compile_,
              "val_interval": int(val_interval), "checkpoint_interval": int(ckpt_interval),
              **start,
              "name": name or f"{widgets.network_label(network)} on {ds_name}"}
    try:
        lrs = parse_numbers(sweep_lrs, float, "Sweep learning rates")
        sizes = parse_numbers(sweep_bs, int, "Sweep batch sizes")
        if lrs or sizes:
            ids = jobs.submit_sweep(config, lrs=lrs, batch_sizes=sizes, owner=user,
                                    name=config["name"])
            st.session_state["compare_ids"] = ids
            nav.go("compare")
        elif clone_id:
            job_id = jobs.clone(clone_id, overrides=config, owner=user, name=config["name"])
        else:
            job_id = jobs.submit(config, owner=user, name=config["name"])
    except (ConfigError, jobs.JobError, ValueError) as e:
        st.error(str(e))
        return
    nav.go("job", id=job_id)
