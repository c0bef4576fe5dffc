"""Checks of a loaded config, once, when it is loaded: every value against the type of its default, and against
the range or choices of RULES where it has one, so that a mistyped value is a one-line ValueError naming the key
instead of a TypeError deep in training.

The types come from the defaults themselves (DEFAULTS of train/config.py, or the experiment defaults), so a key
added to the defaults later is checked too: a bool default takes a bool, an int default an integer (an integral
number such as 1e3 becomes 1000), a float default any finite number, a string default a string, a list default a
list (of the type of its first item), a mapping a mapping; a key whose default is None takes any value unless
RULES says more. Numbers may be written 1e-3 (YAML 1.2): `load_yaml` and `parse_value` read them as numbers,
where PyYAML's YAML 1.1 reads a string.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

import yaml


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats: 1e-3, 5E+2, 1e3 (YAML 1.1 wants a dot and a signed exponent)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _yaml_problem(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem


def load_yaml(path: str | Path) -> Dict[str, Any]:
    """The mapping in a YAML file (empty file: {}); ValueError/FileNotFoundError naming the file otherwise."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such config file")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a YAML config file")
    try:
        content = yaml.load(path.read_text(), Loader=_Loader)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a text (YAML) file ({err.reason})") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {_yaml_problem(err)}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ValueError(f"{path}: a config must be a mapping of keys to values, not a {type(content).__name__}")
    return content


def parse_value(text: str, where: str) -> Any:
    """A command-line value read as YAML (1.2 numbers); ValueError naming `where` if it is not YAML."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        raise ValueError(f"{where}: the value {text!r} is not valid YAML: {_yaml_problem(err)}") from None


@dataclass(frozen=True)
class Rule:
    """What a key takes beyond the type of its default: bounds, choices, None, or a type where the default is None."""

    ge: Optional[float] = None
    gt: Optional[float] = None
    le: Optional[float] = None
    lt: Optional[float] = None
    choices: Optional[Sequence[Any]] = None
    none: bool = False  # None is allowed as well
    kind: Optional[type] = None  # the type, for a key whose default is None
    nonempty: bool = False  # strings and lists
    check: Optional[Callable[[Any], Any]] = None  # raises ValueError for a value it refuses (e.g. a spec string)


def _from_autotune():
    from tpainn.train.autotune import STRATEGIES

    return STRATEGIES


def _dispersion(spec: str) -> None:
    from tpainn.dispersion import canonical

    canonical(spec)


def _test_setting(value) -> None:
    from tpainn.data.sources import test_setting

    test_setting(value)


def _formats():
    from tpainn.data.readers import FORMATS

    return FORMATS


# How a frame source is read and tested: `data.*` in a training config, top-level keys in a learning curve.
_SOURCE_RULES = {
    "test": Rule(none=True, kind=object, check=_test_setting),
    "test_seed": Rule(ge=0),
    "format": Rule(kind=str, none=True, choices=_formats),
    "energy_key": Rule(kind=str, none=True, nonempty=True),
    "forces_key": Rule(kind=str, none=True, nonempty=True),
    "stress_key": Rule(kind=str, none=True, nonempty=True),
}

# Dotted key → Rule. "section.*" applies to every key of the section without its own rule (the loss weights).
RULES: Dict[str, Rule] = {
    "model.cutoff": Rule(gt=0),
    "model.n_features": Rule(ge=1),
    "model.n_interactions": Rule(ge=1),
    "model.n_rbf": Rule(ge=1),
    "model.rbf": Rule(choices=("gaussian", "bessel")),
    "model.dtype": Rule(choices=("float32", "float64")),
    "model.repulsion": Rule(choices=("zbl", "none")),
    "model.dispersion": Rule(check=_dispersion),
    "data.dataset": Rule(nonempty=True),
    **{f"data.{key}": rule for key, rule in _SOURCE_RULES.items()},
    "split.n_train": Rule(ge=1),
    "split.n_val": Rule(ge=1),
    "split.seed": Rule(ge=0),
    "loss.*": Rule(ge=0),
    "optimizer.lr": Rule(gt=0),
    "optimizer.weight_decay": Rule(ge=0),
    "optimizer.batch_size": Rule(ge=1),
    "optimizer.grad_clip": Rule(gt=0),
    "ema_decay": Rule(ge=0, lt=1),
    "schedule.kind": Rule(choices=("plateau", "cosine")),
    "schedule.factor": Rule(gt=0, lt=1),
    "schedule.patience": Rule(ge=0),
    "schedule.min_lr": Rule(ge=0),
    "autotune.from": Rule(kind=str, none=True, nonempty=True),
    "autotune.strategy": Rule(choices=_from_autotune),
    "autotune.frozen_layers": Rule(ge=0),
    "autotune.lr_factor": Rule(gt=0),
    "autotune.warmup_epochs": Rule(ge=0),
    "autotune.l2sp": Rule(ge=0),
    "autotune.replay.data": Rule(kind=str, none=True, nonempty=True),
    "autotune.replay.n_frames": Rule(ge=1),
    "autotune.replay.per_batch": Rule(ge=0),
    "autotune.replay.weight": Rule(ge=0),
    "autotune.replay.forces_weight": Rule(ge=0),
    "autotune.replay.head": Rule(choices=("shared", "separate")),
    "epochs": Rule(ge=1),
    "early_stopping_patience": Rule(ge=1),
    "seed": Rule(ge=0),
    "threads": Rule(kind=int, none=True, ge=1),
    "fused_messages": Rule(kind=bool),
    "output_dir": Rule(nonempty=True),
    # The learning-curve experiment (experiments/learning_curve.py).
    "train_config": Rule(kind=str, none=True, nonempty=True),
    "pretrained": Rule(kind=str, none=True, nonempty=True),
    "dataset": Rule(nonempty=True),
    "sizes": Rule(ge=2, nonempty=True),
    "seeds": Rule(ge=0, nonempty=True),
    "val_fraction": Rule(gt=0, lt=1),
    "min_steps": Rule(ge=0),
    **_SOURCE_RULES,
}


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _rule_for(dotted: str) -> Optional[Rule]:
    if dotted in RULES:
        return RULES[dotted]
    section, _, _ = dotted.rpartition(".")
    return RULES.get(f"{section}.*") if section else None


def _is_number_text(text: str) -> bool:
    """Whether `text` is a finite number written as text (a quoted number); 'nan' and 'inf' are not."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _check_scalar(value: Any, default: Any, rule: Optional[Rule], key: str) -> Any:
    """The value (an integral float made int for an int key), or ValueError naming the key."""
    rule = rule or Rule()
    if value is None:
        if rule.none or (default is None and rule.kind is None):
            return None
        raise ValueError(f"config key '{key}' must be given (it is null)")
    kind = rule.kind or (type(default) if default is not None else None)
    if kind is bool and not isinstance(value, bool):
        raise ValueError(f"config key '{key}' must be true or false, got {value!r} ({_type_name(value)})")
    if kind is int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"config key '{key}' must be an integer, got {value!r} ({_type_name(value)})")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = " (write numbers without quotes)" if isinstance(value, str) and _is_number_text(value) else ""
            raise ValueError(f"config key '{key}' must be a number, got {value!r} ({_type_name(value)}){hint}")
        if not math.isfinite(value):
            raise ValueError(f"config key '{key}' must be a finite number, got {value!r}")
    if kind is str and isinstance(value, int) and not isinstance(value, bool) and rule.choices is None:
        value = str(value)  # a name or path that YAML read as a number: output_dir=2024
    if kind is str and not isinstance(value, str):
        raise ValueError(f"config key '{key}' must be a string, got {value!r} ({_type_name(value)})")
    choices = rule.choices() if callable(rule.choices) else rule.choices
    if choices is not None and value not in choices:
        raise ValueError(f"config key '{key}' must be one of {', '.join(map(str, choices))}; got {value!r}")
    if rule.nonempty and isinstance(value, str) and not value.strip():
        raise ValueError(f"config key '{key}' must not be empty")
    if rule.check is not None:
        try:
            rule.check(value)
        except ValueError as err:
            raise ValueError(f"config key '{key}': {err}") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for bound, holds, text in ((rule.ge, lambda b: value >= b, ">="), (rule.gt, lambda b: value > b, ">"),
                                   (rule.le, lambda b: value <= b, "<="), (rule.lt, lambda b: value < b, "<")):  # fmt: skip
            if bound is not None and not holds(bound):
                raise ValueError(f"config key '{key}' must be {text} {bound:g}, got {value!r}")
    return value


def _check_list(value: Any, default: list, rule: Optional[Rule], key: str) -> list:
    if not isinstance(value, list):
        raise ValueError(f"config key '{key}' must be a list, got {value!r} ({_type_name(value)})")
    if rule is not None and rule.nonempty and not value:
        raise ValueError(f"config key '{key}' must not be an empty list")
    if not default:
        return value
    item_rule = Rule(ge=rule.ge, gt=rule.gt, le=rule.le, lt=rule.lt, choices=rule.choices) if rule else None
    return [_check_scalar(item, default[0], item_rule, f"{key}[{i}]") for i, item in enumerate(value)]


def check_config(config: Dict[str, Any], defaults: Mapping[str, Any], where: str = "") -> Dict[str, Any]:
    """`config` with every value checked against `defaults` and RULES (integral floats of int keys made int);
    ValueError naming the first key that is wrong. Keys not in `defaults` are errors too."""
    for key, value in config.items():
        dotted = f"{where}{key}"
        if key not in defaults:
            raise ValueError(f"unknown config key '{dotted}' (known: {', '.join(sorted(defaults))})")
        default = defaults[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ValueError(f"config key '{dotted}' must be a mapping, got {value!r}")
            check_config(value, default, f"{dotted}.")
        elif isinstance(default, list):
            config[key] = _check_list(value, default, _rule_for(dotted), dotted)
        else:
            config[key] = _check_scalar(value, default, _rule_for(dotted), dotted)
    return config
