"""Issue 26 item 4: TrainConfig's field metadata is the one source of each training option's
range, choices and help; validate(), the CLI's options and the New model form's inputs all
read it, and this test holds them to the same ranges (at and just past each bound)."""

from __future__ import annotations

import argparse
import ast
import math
from pathlib import Path

import pytest

from engine.cli.main import build_parser
from engine.cli.train import config_from_args
from engine.training.config import (
    BROWSER_MAX_INT,
    ConfigError,
    Option,
    Range,
    TrainConfig,
    option,
    options,
)
from testkit.apptest import app, errors, open_page

ROOT = Path(__file__).resolve().parents[2]

# The ranges as decided (validate() is the rule; the form and the CLI read the same metadata).
# Changing one is a decision: change it here too. "NAME@VALUE" is the range that VALUE of the
# option's `by` option picks (gamma with the sigmoid policy takes a negative one).
RANGES = {
    "epochs": "from 1 to 100,000",
    "batch_size": "from 1 to 1,000,000",
    "lr": "(0, 1e+12]",
    "momentum": "[0, 1)",
    "weight_decay": "[0, 1000]",
    "step_size": "(0, 1e+06]",
    "gamma": "(0, 1000]",
    "gamma@sigmoid": "[-1000, 1000]",
    "milestones": "[0, 1e+06]",
    "power": "[0, 1000]",
    "warmup_epochs": "[0, 1e+06]",
    "seed": "from 0 to 9,223,372,036,854,775,807",
    "val_interval": "from 1 to 100,000",
    "checkpoint_interval": "from 1 to 100,000",
    "early_stopping": "from 0 to 100,000",
    "devices": "from 1 to 1,024",
    "pretrained_lr_factor": "(0, 1]",
    "augment.rotation": "[0, 180]",
    "augment.shift": "[0, 1]",
    "augment.shear": "[0, 89]",
    "augment.zoom": "[0, 1)",
    "augment.invert": "[0, 1]",
    "augment.noise": "[0, 10]",
}
CHOICES = {"solver", "lr_policy", "precision"}

# The New model form's input of each option with a range or choices: (widget, key).
FORM = {
    "epochs": ("number_input", "nm_epochs"),
    "batch_size": ("number_input", "nm_batch"),
    "solver": ("selectbox", "nm_solver"),
    "lr": ("number_input", "nm_lr"),
    "momentum": ("number_input", "nm_mom"),
    "weight_decay": ("number_input", "nm_wd"),
    "lr_policy": ("selectbox", "nm_policy"),
    "step_size": ("number_input", "nm_step"),
    "gamma": ("number_input", "nm_gamma"),
    "power": ("number_input", "nm_power"),
    "warmup_epochs": ("number_input", "nm_warmup"),
    "seed": ("number_input", "nm_seed"),
    "val_interval": ("number_input", "nm_val_int"),
    "checkpoint_interval": ("number_input", "nm_ckpt_int"),
    "early_stopping": ("number_input", "nm_early"),
    "devices": ("number_input", "nm_devices"),
    "precision": ("selectbox", "nm_prec"),
    "pretrained_lr_factor": ("number_input", "nm_pre_lr"),
    "augment.rotation": ("slider", "nm_rot"),
    "augment.shift": ("slider", "nm_shift"),
    "augment.shear": ("slider", "nm_shear"),
    "augment.zoom": ("slider", "nm_zoom"),
    "augment.invert": ("slider", "nm_invert"),
    "augment.noise": ("slider", "nm_noise"),
}
# Options with a range the form has no bounded input for, and why.
NOT_BOUNDED_IN_FORM = {"milestones": "a text box of comma-separated epochs; validate() checks "
                                     "each on submit"}
# The form's modules: their number inputs and sliders are made by dashboard/views/train_forms.py
FORM_MODULES = ("dashboard/views/new_model.py", "dashboard/views/start_from.py")
# The two GPUs the form is shown, so that it asks how many a job takes.
TWO_GPUS = [{"id": "cpu", "name": "CPU", "memory_gb": None},
            {"id": "cuda:0", "name": "GPU", "memory_gb": 80.0},
            {"id": "cuda:1", "name": "GPU", "memory_gb": 80.0}]


def ranged() -> dict[str, Option]:
    return {n: o for n, o in options().items() if o.range is not None or o.choices}


def _ranges(name: str, opt: Option) -> dict[str, tuple[object, Range]]:
    """label -> (the `by` option's value, the range that value picks) for every range."""
    out: dict[str, tuple[object, Range]] = {name: (None, opt.range)}
    out.update({f"{name}@{v}": (v, r) for v, r in opt.ranges.items()})
    return out


def _past(opt: Option, value, direction: int):
    """The nearest value beyond `value` in `direction` (+1 up, -1 down)."""
    return value + direction if opt.whole else math.nextafter(value, direction * math.inf)


def probes(opt: Option, r: Range) -> list[tuple[object, bool]]:
    """(value, whether validate() takes it): each bound as a form takes it, and just past."""
    low, high = r.closed(opt.whole)
    out = [(low, True), (high, True), (_past(opt, low, -1), False),
           (_past(opt, high, +1), False)]
    if r.low_open:
        out.append((r.low, False))
    if r.high_open:
        out.append((r.high, False))
    if not opt.whole:
        out += [(math.nan, False), (math.inf, False)]
    return out


def config_with(name: str, value, by_value=None) -> TrainConfig:
    opt = option(name)
    cfg = TrainConfig(dataset="d")
    if opt.by:
        setattr(cfg, opt.by, by_value if by_value is not None else option(opt.by).default)
    if opt.each:
        value = [value]
    top, _, sub = name.partition(".")
    setattr(cfg.augment, sub, value) if sub else setattr(cfg, top, value)
    return cfg


def test_every_ranged_option_is_pinned_and_in_the_form():
    names = set(ranged())
    assert {n for n in names if option(n).choices} == CHOICES
    assert {label for n in names - CHOICES for label in _ranges(n, option(n))} == set(RANGES)
    assert names == set(FORM) | set(NOT_BOUNDED_IN_FORM)
    for name in names - CHOICES:
        opt = option(name)
        for label, (_, r) in _ranges(name, opt).items():
            assert r.text(opt.whole) == RANGES[label], label
    # The measured disagreements: validate's ranges are the rule.
    assert option("warmup_epochs").form_bounds() == (0.0, 1e6)
    assert option("gamma").form_bounds("sigmoid") == (-1e3, 1e3)
    assert option("gamma").form_bounds("step") == (math.nextafter(0, 1), 1e3)


@pytest.mark.parametrize("name", sorted(set(RANGES)))
def test_validate_holds_each_range_at_and_past_its_bounds(name):
    base, _, by_value = name.partition("@")
    opt = option(base)
    r = _ranges(base, opt)[name][1]
    for value, accepted in probes(opt, r):
        cfg = config_with(base, value, by_value or None)
        if accepted:
            assert cfg.validate() is cfg, (name, value)
        else:
            with pytest.raises(ConfigError) as e:
                cfg.validate()
            message = str(e.value)
            assert (opt.each or opt.label) in message, (name, value, message)
            if opt.whole:  # "from 1 epoch to 100,000": the unit comes after the low end
                assert f"from {r.low:,}" in message and f"to {r.high:,}" in message, message
            else:
                assert r.text() in message, (name, value, message)


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_validate_takes_exactly_the_choices(name):
    for value in option(name).choices:
        assert config_with(name, value).validate()
    with pytest.raises(ConfigError, match="choose from"):
        config_with(name, "no-such-" + name).validate()


def _train_actions(command: tuple[str, ...]) -> dict[str, argparse.Action]:
    parser = build_parser()
    for word in command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return {a.dest: a for a in parser._actions}


def _dest(name: str) -> str:
    return name.replace("augment.", "aug_")


@pytest.mark.parametrize("command", [("train",), ("jobs", "submit")])
def test_cli_options_carry_the_metadata(command):
    actions = _train_actions(command)
    for name, opt in options().items():
        action = actions[_dest(name)]
        assert opt.help in action.help, name
        if opt.choices:
            assert tuple(action.choices) == opt.choices, name
        else:
            assert action.choices is None, name
        if opt.range is not None:
            for label, (by_value, r) in _ranges(name, opt).items():
                assert r.text(opt.whole) in action.help, label
                if by_value is not None:
                    assert f"--{opt.by.replace('_', '-')} {by_value}" in action.help
        if opt.default not in (None, ""):
            assert f"(default {opt.default})" in action.help, name


@pytest.mark.parametrize("name", sorted(set(RANGES)))
def test_cli_values_meet_the_same_bounds(name):
    base, _, by_value = name.partition("@")
    opt = option(base)
    flag = "--" + _dest(base).replace("_", "-")
    extra = [f"--{opt.by.replace('_', '-')}", by_value] if by_value else []
    for value, accepted in probes(opt, _ranges(base, opt)[name][1]):
        a = build_parser().parse_args(["train", "--dataset", "d", *extra, f"{flag}={value!r}"])
        if accepted:
            assert config_from_args(a), (name, value)
        else:
            with pytest.raises(ConfigError):
                config_from_args(a)


def test_the_cli_refuses_what_is_not_a_choice(capsys):
    for name in CHOICES:
        with pytest.raises(SystemExit):
            build_parser().parse_args(["train", f"--{name.replace('_', '-')}", "nope"])
    assert "invalid choice" in capsys.readouterr().err


def test_train_help_stays_readable():
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "--gamma GAMMA" in text and "(0, 1000]" in text and "sigmoid: [-1000, 1000]" in text
    assert "--warmup-epochs" in text and "[0, 1e+06]" in text
    assert max(len(line) for line in text.splitlines()
               if not line.lstrip().startswith("[")) <= 100


def _widgets(at) -> dict[str, object]:
    return {w.key: w for kind in ("number_input", "slider", "selectbox") for w in getattr(at, kind)}


def test_the_form_offers_what_validate_accepts(home, digits_home, monkeypatch):
    import shutil

    from dashboard.views import new_model

    shutil.copytree(digits_home, home, dirs_exist_ok=True)
    monkeypatch.setattr(new_model, "list_devices", lambda: TWO_GPUS)  # so it asks how many
    at = open_page(app(), "new_model")
    assert not at.exception and not errors(at)
    at.radio(key="nm_start_kind").set_value("torchvision's weights").run()
    seen: dict[str, set] = {}
    for policy in ("step", "inv", "sigmoid"):  # each shows other schedule inputs
        at.selectbox(key="nm_policy").set_value(policy).run()
        assert not at.exception and not errors(at), policy
        widgets = _widgets(at)
        for name, (kind, key) in FORM.items():
            if key not in widgets:
                continue
            w, opt = widgets[key], option(name)
            assert w.type == kind, key
            if opt.choices:
                assert w.options == list(opt.choices), key
                seen.setdefault(name, set()).add(None)
                continue
            by_value = policy if opt.by else None
            low, high = opt.form_bounds(by_value)
            if name == "devices":  # no more GPUs than the machine has
                high = min(high, len(TWO_GPUS) - 1)
            assert (w.min, w.max) == (low, high), (key, policy, w.min, w.max, low, high)
            seen.setdefault(name, set()).add(opt.ranges.get(by_value) and by_value)
    assert set(seen) == set(FORM)
    assert seen["gamma"] == {None, "sigmoid"}  # both of its ranges
    # A decaying sigmoid's negative gamma, then a policy that needs a positive one: the input
    # starts again inside its new range instead of failing.
    at.number_input(key="nm_gamma").set_value(-0.5).run()
    at.selectbox(key="nm_policy").set_value("step").run()
    assert not at.exception and not errors(at)
    assert at.number_input(key="nm_gamma").value == option("gamma").default


def test_the_form_offers_no_more_than_its_bounds_allow():
    """A form's bound differs from validate's only where the metadata says why."""
    for name, opt in ranged().items():
        if opt.choices:
            continue
        low, high = opt.range.closed(opt.whole)
        assert opt.form_bounds() == (low, min(high, opt.form_high or high)), name
        assert (opt.form_high is None) == (not opt.form_reason), name
    assert option("seed").form_bounds() == (0, BROWSER_MAX_INT)


def test_the_form_takes_no_literal_bounds():
    """The form's number inputs and sliders come from dashboard/views/train_forms.py (which
    reads the metadata), never st.number_input / st.slider with numbers written in."""
    for path in FORM_MODULES:
        tree = ast.parse((ROOT / path).read_text())
        direct = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call)
                  and isinstance(n.func, ast.Attribute)
                  and n.func.attr in ("number_input", "slider")]
        assert not direct, f"{path}:{direct}: use train_forms.number / slider"
    forms = ast.parse((ROOT / "dashboard/views/train_forms.py").read_text())
    literals = [n.lineno for n in ast.walk(forms) if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr in ("number_input", "slider", "selectbox")
                and any(isinstance(a, ast.Constant) and isinstance(a.value, (int, float))
                        for a in [*n.args, *(k.value for k in n.keywords)])]
    assert not literals, literals
