"""Where a run's weights start: an earlier job's checkpoint, a weights file, or torchvision's
own pretrained weights; which layers stay frozen; which learn at a smaller rate.

TrainConfig.init_from names the source:
  - ``JOB[:best|last|EPOCH]``: a kept checkpoint of an earlier job (an id or unique prefix;
    best.pt by default, else last.pt);
  - a path to a weights file: a product checkpoint or a plain state dict such as
    torchvision's ``resnet18-*.pth``. Files are read with ``torch.load(weights_only=True)``:
    tensors and plain data only, nothing in them runs; anything else is refused;
  - ``torchvision[:WEIGHTS]``: torchvision's download of its own weights (DEFAULT unless a
    name such as IMAGENET1K_V1 is given), for the zoo networks built on torchvision.

Equal classes: every weight is copied. Different classes: the last layer (the head) keeps its
fresh random weights, and the log says so. Any other shape difference is an InitError naming
the layer. What was loaded and frozen is written to the run's init.json, so a resumed run
rebuilds the same optimizer groups without the source.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import urllib.error
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.state.runs import job_dir
from engine.state.workspace import atomic_write_json
from engine.training.config import ConfigError
from engine.training.start import FREEZE_ALL_BUT_HEAD, is_path, is_torchvision, split_job_ref

INIT_FILE = "init.json"  # in a run directory: where its weights started


class InitError(ConfigError):
    """Starting weights that cannot be used, with the reason in one line."""


@dataclass
class InitPlan:
    """What start_weights did: kept in init.json for resume, lineage and the job page."""

    source: str  # the resolved init_from: 'JOBID:best', an absolute path or 'torchvision:X'
    checkpoint: str = ""  # the file read ('' for a torchvision download)
    loaded: list[str] = field(default_factory=list)  # parameter names copied
    head: str = ""  # the last layer's module name
    head_replaced: bool = False
    frozen: list[str] = field(default_factory=list)  # module names
    notes: list[str] = field(default_factory=list)  # what the log said


# --- naming the source ----------------------------------------------------------------------


def _find_job_dir(job: str, home: str | os.PathLike | None) -> Path:
    jobs = job_dir("x", home).parent
    exact = jobs / job
    if job and "/" not in job and not job.startswith(".") and exact.is_dir():
        return exact
    found = sorted(p for p in jobs.glob(f"{glob_escape(job)}*") if p.is_dir()) \
        if job and jobs.is_dir() else []
    if len(found) == 1:
        return found[0]
    raise InitError(f"--init-from: no job {job!r} in this workspace" if not found
                    else f"--init-from: {job!r} matches several jobs; give more of the id")


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def job_checkpoint(job_dir: Path, which: str) -> Path:
    """The checkpoint file of a job that 'best', 'last' or an epoch number names."""
    if which == "best":
        path = job_dir / "best.pt"
        if not path.exists():  # a job with no validation pass yet: its latest weights
            path = job_dir / "last.pt"
    elif which == "last":
        path = job_dir / "last.pt"
    else:
        path = job_dir / "checkpoints" / f"epoch-{int(which):04d}.pt"
    if not path.exists():
        kept = sorted(p.stem.removeprefix("epoch-").lstrip("0")
                      for p in (job_dir / "checkpoints").glob("epoch-*.pt"))
        raise InitError(f"--init-from: job {job_dir.name} has no {which} checkpoint"
                        + (f" (kept epochs: {', '.join(kept)})" if kept else
                           " (it has no checkpoint yet)"))
    return path


def resolve_source(init_from: str, home: str | os.PathLike | None = None
                   ) -> tuple[str, Path | None]:
    """(canonical init_from, file to read or None for a torchvision download). The canonical
    form has the full job id and tag, or an absolute path: what lineage and resume need."""
    text = init_from.strip()
    if is_torchvision(text):
        return text, None
    if is_path(text):
        path = Path(text).expanduser().resolve()
        if not path.is_file():
            raise InitError(f"--init-from: no weights file at {text}")
        return str(path), path
    try:
        job, which = split_job_ref(text)
    except ValueError as e:
        raise InitError(str(e)) from None
    run = _find_job_dir(job, home)
    return f"{run.name}:{which}", job_checkpoint(run, which)


# --- reading weights ------------------------------------------------------------------------


def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], list[str] | None]:
    """(state dict, class names or None) from a product checkpoint or a plain state dict.
    Loaded with weights_only=True: a file holding code or other objects is refused."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InitError(f"{path.name} refused: it holds code or Python objects (or is no "
                        "weights file at all), not only tensors; weights are read with "
                        "weights_only=True, so nothing in a file ever runs. Save a plain state "
                        "dict instead: torch.save(model.state_dict(), ...)") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise InitError(f"{path.name} is not a PyTorch weights file ({first})") from None
    return state_dict_of(obj, path.name)


def state_dict_of(obj: Any, name: str) -> tuple[dict[str, torch.Tensor], list[str] | None]:
    classes = None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):  # a product checkpoint
        classes = obj.get("classes")
        obj = obj["model"]
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise InitError(f"{name} holds no state dict (a mapping of layer names to tensors)")
    return dict(obj), (list(classes) if isinstance(classes, list | tuple) else None)


def torchvision_weights(spec: dict, init_from: str) -> dict[str, torch.Tensor]:
    """torchvision's pretrained weights for the network's torchvision layer, downloaded by
    torchvision's own code (cached under torch.hub's directory)."""
    import torchvision

    names = [layer.get("name") for layer in spec.get("layers", [])
             if layer.get("type") == "torchvision"]
    if not names:
        raise InitError("torchvision's pretrained weights exist only for the networks built on "
                        "torchvision (e.g. resnet18); give a weights file or a job instead")
    name = names[0]
    tag = init_from.partition(":")[2]
    try:
        enum = torchvision.models.get_model_weights(name)
        weights = enum[tag] if tag else enum.DEFAULT
    except (KeyError, ValueError):
        known = ", ".join(w.name for w in torchvision.models.get_model_weights(name))
        raise InitError(f"torchvision has no {tag!r} weights for {name}; "
                        f"choose from {known}") from None
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except (urllib.error.URLError, OSError, RuntimeError) as e:
        reason = getattr(e, "reason", None) or e
        file = weights.url.rsplit("/", 1)[-1]
        raise InitError(f"could not download torchvision's {name} weights ({reason}); without "
                        f"internet, give the weights file instead: --init-from path/to/{file}"
                        ) from None


# --- applying them --------------------------------------------------------------------------


def parameter_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules that hold parameters themselves, in order: the 'layers' freezing counts."""
    return [(name, m) for name, m in model.named_modules()
            if name and any(True for _ in m.parameters(recurse=False))]


def head_name(model: nn.Module) -> str:
    return parameter_modules(model)[-1][0]


def _describe(model: nn.Module, module_name: str) -> str:
    kind = type(model.get_submodule(module_name)).__name__
    return f"layer {module_name} ({kind})"


def _match_prefix(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> str:
    """The prefix that maps the source's names onto the model's: '' for a product checkpoint,
    e.g. '0.' for a torchvision state dict loaded into a spec's torchvision layer."""
    prefixes = {""} | {k.split(".", 1)[0] + "." for k in target}
    best = max(sorted(prefixes), key=lambda p: sum(p + k in target for k in source))
    if not any(best + k in target for k in source):
        raise InitError("the weights match none of this network's layers (they have "
                        f"{', '.join(list(source)[:3])}...; it has {', '.join(list(target)[:3])}"
                        "...): they are for another network")
    return best


def load_start_weights(model: nn.Module, source: dict[str, torch.Tensor],
                       source_classes: list[str] | None, classes: list[str],
                       log: Callable[[str], None]) -> InitPlan:
    """Copy the source's weights into the model; returns what was loaded (source unset)."""
    target = model.state_dict()
    prefix = _match_prefix(source, target)
    mapped = {prefix + k: v for k, v in source.items()}
    head = head_name(model)
    plan = InitPlan(source="", head=head)
    classes_differ = source_classes is not None and list(source_classes) != list(classes)

    def say(msg: str) -> None:
        plan.notes.append(msg)
        log(msg)

    for key in mapped:
        if key not in target:
            module = key.rsplit(".", 1)[0]
            raise InitError(f"the weights have layer {module!r} ({key}), which this network "
                            "lacks: they are for another network")
    new: dict[str, torch.Tensor] = {}
    for key, want in target.items():
        in_head = key.startswith(head + ".")
        got = mapped.get(key)
        if got is None:
            if key.endswith("num_batches_tracked"):
                continue
            if in_head:
                plan.head_replaced = True
                continue
            layer = _describe(model, key.rsplit(".", 1)[0])
            raise InitError(f"the weights have nothing for {layer} ({key}): they are for "
                            "another network")
        if in_head and (classes_differ or got.shape != want.shape):
            plan.head_replaced = True
            continue
        if got.shape != want.shape:
            module = key.rsplit(".", 1)[0]
            if _is_first_conv(model, module) and got.dim() == 4 and got.shape[1] == 3 \
                    and want.shape[1] == 1 and got.shape[0] == want.shape[0]:
                got = got.sum(dim=1, keepdim=True)  # RGB filters onto grey images
                say(f"{_describe(model, module)}: colour filters summed for grey images")
            else:
                raise InitError(f"{_describe(model, module)} does not fit: the weights have "
                                f"shape {list(got.shape)} for {key}, this network needs "
                                f"{list(want.shape)}")
        new[key] = got.to(dtype=want.dtype)
    model.load_state_dict(new, strict=False)
    plan.loaded = [k for k, _ in model.named_parameters() if k in new]
    if plan.head_replaced:
        n_src = source_classes and len(source_classes)
        say(f"classes differ ({n_src or 'source'} -> {len(classes)}): the last layer, "
            f"{_describe(model, head)}, starts from random weights")
    say(f"started from {len(plan.loaded)} pretrained weight tensors"
        + ("" if not plan.head_replaced else " (all but the last layer)"))
    return plan


def _is_first_conv(model: nn.Module, module_name: str) -> bool:
    first = next((n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    return first == module_name


def freeze(model: nn.Module, how: str, head: str) -> list[str]:
    """Freeze the first N parameter layers ('N') or all but the head ('all-but-head'): their
    parameters stop learning and their batch norms keep their running statistics."""
    modules = parameter_modules(model)
    if how == FREEZE_ALL_BUT_HEAD:
        chosen = [(n, m) for n, m in modules if n != head and not n.startswith(head + ".")]
    else:
        n = int(how)
        if n >= len(modules):
            raise InitError(f"--freeze {n}: this network has {len(modules)} layers with "
                            f"weights; freezing them all leaves nothing to learn")
        chosen = modules[:n]
    for _, module in chosen:
        for p in module.parameters(recurse=False):
            p.requires_grad_(False)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.register_forward_pre_hook(_keep_eval)
    return [n for n, _ in chosen]


def _keep_eval(module: nn.Module, _inputs: Any) -> None:
    module.eval()  # a frozen batch norm normalises with its stored statistics, never updates


def parameter_groups(model: nn.Module, plan: InitPlan | None, lr_scale: float
                     ) -> list[dict[str, Any]]:
    """Optimizer groups: new (or all, without a start) parameters at the learning rate, the
    pretrained ones at lr_scale of it ('lr_scale' is read by the trainer); frozen left out."""
    loaded = set(plan.loaded) if plan else set()
    fresh = [p for n, p in model.named_parameters() if p.requires_grad and n not in loaded]
    pretrained = [p for n, p in model.named_parameters() if p.requires_grad and n in loaded]
    groups = [{"params": fresh, "lr_scale": 1.0}, {"params": pretrained, "lr_scale": lr_scale}]
    return [g for g in groups if g["params"]]


def start_weights(cfg: Any, model: nn.Module, spec: dict, classes: list[str],
                  run_dir: str | os.PathLike, resume: bool,
                  home: str | os.PathLike | None, log: Callable[[str], None]
                  ) -> list[dict[str, Any]]:
    """Apply cfg.init_from and cfg.freeze to a freshly built model; returns the optimizer's
    parameter groups. On resume nothing is read but init.json (the checkpoint holds the
    weights), so the groups match the saved optimizer state."""
    if not cfg.init_from:
        return parameter_groups(model, None, 1.0)
    init_file = Path(run_dir) / INIT_FILE
    if resume and init_file.exists():
        plan = InitPlan(**json.loads(init_file.read_text()))
        frozen = set(plan.frozen)
        for name, module in parameter_modules(model):
            if name in frozen:
                for p in module.parameters(recurse=False):
                    p.requires_grad_(False)
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.register_forward_pre_hook(_keep_eval)
        return parameter_groups(model, plan, cfg.pretrained_lr_factor)
    canonical, path = resolve_source(cfg.init_from, home)
    if path is None:
        state, source_classes = torchvision_weights(spec, canonical), None
    else:
        state, source_classes = read_weights(path)
    log(f"starting from {canonical}")
    plan = load_start_weights(model, state, source_classes, classes, log)
    plan.source, plan.checkpoint = canonical, str(path or "")
    if cfg.freeze:
        plan.frozen = freeze(model, cfg.freeze, plan.head)
        msg = f"frozen: {len(plan.frozen)} layers ({', '.join(plan.frozen[:6])}" + \
              (", ...)" if len(plan.frozen) > 6 else ")")
        plan.notes.append(msg)
        log(msg)

    atomic_write_json(init_file, asdict(plan))
    return parameter_groups(model, plan, cfg.pretrained_lr_factor)


def read_plan(run_dir: str | os.PathLike) -> InitPlan | None:
    """A run's init.json, or None when it started from random weights."""
    path = Path(run_dir) / INIT_FILE
    return InitPlan(**json.loads(path.read_text())) if path.exists() else None
