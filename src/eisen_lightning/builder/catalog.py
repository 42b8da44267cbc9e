"""The palette: every option of every config group, read from the conf/ tree and the targets' signatures.

Nothing here lists components: groups and options come from Hydra's config loader, parameters from
the YAML files and the ``_target_`` signatures, help from docstrings. :data:`GROUP_META` only adds
what Hydra cannot express (titles, roles, how many of a group an experiment takes); a group it does
not know still appears, as a setting.
"""

import importlib.resources
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eisen_lightning.builder import compose
from eisen_lightning.builder.fields import RESERVED_KEYS, describe, param_docs, signature_of

#: group -> (title, role, several options at once, required); roles data/net/loss/task are wired in
#: that order on the page, the others are settings
GROUP_META: dict[str, tuple[str, str, bool, bool]] = {
    "data": ("Data sets", "data", False, True),
    "net": ("Nets", "net", False, True),
    "loss": ("Losses", "loss", False, True),
    "task": ("Tasks and metrics", "task", False, True),
    "optimizer": ("Optimizers", "setting", False, True),
    "scheduler": ("Schedulers", "setting", False, False),
    "trainer": ("Trainer, strategy and precision", "setting", False, True),
    "transforms": ("Transforms (training augmentations, in order)", "transforms", True, False),
    "callbacks": ("Callbacks (summaries, ONNX export...)", "setting", True, False),
    "logger": ("Loggers", "setting", False, False),
    "paths": ("Paths", "setting", False, True),
    "debug": ("Debug", "setting", False, False),
    "hparams_search": ("Hyperparameter search", "setting", False, False),
    "parallel": ("Model parallelism", "setting", False, False),
}
#: what a task of each kind accepts: the ``# input:`` tag of losses, the ``# output:`` tag of nets
TASK_FITS: dict[str, dict[str, list[str]]] = {
    "segmentation": {"loss": ["segmentation", "multilabel"], "net": ["segmentation"]},
    "classification": {"loss": ["classification", "multilabel"], "net": ["classification"]},
    "regression": {"loss": ["regression"], "net": ["classification"]},
}
#: the ``# augments:`` tag of transforms each task kind accepts: spatial ones move the label with the
#: image, so they need a label map (segmentation); intensity ones touch the image only
TRANSFORM_FITS: dict[str, list[str]] = {
    "segmentation": ["intensity", "spatial"],
    "classification": ["intensity"],
    "regression": ["intensity"],
}
RUN_GROUP = "run"
_JSONABLE = (str, int, float, bool, type(None))


@dataclass
class Palette:
    """The components the page offers, and the ``_target_``s an experiment may use."""

    groups: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    run: dict[str, Any]
    targets: set[str] = field(default_factory=set)

    def component(self, group: str, option: str) -> dict[str, Any] | None:
        """The component of ``group/option``, or ``None``."""
        for entry in self.groups:
            if entry["name"] == group:
                return next((c for c in entry["components"] if c["option"] == option), None)
        return None

    def group(self, name: str) -> dict[str, Any] | None:
        """The palette entry of group ``name``, or ``None``."""
        return next((g for g in self.groups if g["name"] == name), None)

    def metric(self, metric_id: str) -> dict[str, Any] | None:
        """The metric component ``metric_id``, or ``None``."""
        return next((m for m in self.metrics if m["id"] == metric_id), None)

    def to_json(self) -> dict[str, Any]:
        """What the page receives."""
        return {
            "groups": self.groups,
            "metrics": self.metrics,
            "run": self.run,
            "task_fits": TASK_FITS,
            "transform_fits": TRANSFORM_FITS,
        }


def build_palette(config_dirs: list[Path]) -> Palette:
    """Read every group, option, parameter and metric of the config tree (and of ``config_dirs``)."""
    options = compose.groups_and_options(config_dirs)
    defaults = compose.selected_options(config_dirs, [])
    groups, metrics, targets = [], [], set()
    with compose.hydra_context(config_dirs) as loader:
        raw = {(g, o): _raw_option(loader, config_dirs, g, o) for g in options for o in options[g]}
        root = _plain(loader.repository.load_config("train").config)
    for name, opts in options.items():
        if name in compose.HIDDEN_GROUPS:
            continue
        title, role, multiple, required = GROUP_META.get(
            name, (name.replace("_", " ").title(), "setting", False, False)
        )
        components = [_component(name, o, *raw[(name, o)]) for o in opts]
        targets |= {t for c in components for t in c["targets"]}
        groups.append(
            {
                "name": name,
                "title": title,
                "role": role,
                "multiple": multiple,
                "required": required,
                "default": defaults.get(name, []),
                "components": components,
            }
        )
    for (group, option), (config, _, _) in raw.items():
        if group == "task" and isinstance(config.get("metrics"), dict):
            metrics += _metrics(option, config["metrics"], metrics)
    targets |= {m["target"] for m in metrics}
    for component in next((g["components"] for g in groups if g["name"] == "task"), []):
        config = raw[("task", component["option"])][0].get("metrics") or {}
        component["metrics"] = [m["id"] for m in metrics if config.get(m["key"]) == m["config"]]
    run = {
        "name": RUN_GROUP,
        "fields": [_field(k, v, None) for k, v in root.items() if isinstance(v, _JSONABLE)],
    }
    return Palette(groups=groups, metrics=metrics, run=run, targets=targets)


def _raw_option(loader: Any, config_dirs: list[Path], group: str, option: str) -> tuple[dict, bool, str]:
    """The option's own YAML as plain data, whether it is a ``_global_`` package, and its text."""
    text = _text(config_dirs, group, option)
    own = [
        Path(d) / group / f"{option}.yaml"
        for d in config_dirs
        if (Path(d) / group / f"{option}.yaml").is_file()
    ]
    if own:
        from omegaconf import OmegaConf

        config = _plain(OmegaConf.load(own[0])) or {}
        config.pop("defaults", None)
        return config, "@package _global_" in text, text
    result = loader.repository.load_config(f"{group}/{option}")
    config = _plain(result.config) if result is not None else {}
    glob = (result.header or {}).get("package") == "_global_" if result is not None else False
    config.pop("defaults", None)
    return config, glob, text


def _plain(config: Any) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(config, resolve=False) if config is not None else {}


def _text(config_dirs: list[Path], group: str, option: str) -> str:
    for folder in config_dirs:
        path = Path(folder) / group / f"{option}.yaml"
        if path.is_file():
            return path.read_text()
    try:
        return importlib.resources.files("eisen_lightning.conf").joinpath(group, f"{option}.yaml").read_text()
    except (FileNotFoundError, OSError):
        return ""


def _component(group: str, option: str, config: dict, is_global: bool, text: str) -> dict[str, Any]:
    comments = [
        line[1:].strip() for line in text.splitlines() if line.startswith("#") and "@package" not in line
    ]
    tags = dict(re.findall(r"^# (input|output|augments|dims): (\w+)", text, re.M))
    node = {} if is_global else {k: v for k, v in config.items() if not (group == "task" and k == "metrics")}
    target = node.get("_target_")
    return {
        "id": f"{group}/{option}",
        "group": group,
        "option": option,
        "doc": " ".join(c for c in comments if not re.match(r"(input|output|augments|dims): ", c))[:600],
        "target": target,
        "tags": tags,
        "kind": _task_kind(target) if group == "task" else None,
        "switch": is_global,
        "fields": [] if is_global else fields_of(node),
        "targets": sorted(_targets(config)),
    }


def _task_kind(target: str | None) -> str | None:
    name = (target or "").rpartition(".")[2].removesuffix("Task").lower()
    return name if name in TASK_FITS else None


def _targets(config: Any) -> set[str]:
    if isinstance(config, dict):
        found = {config["_target_"]} if isinstance(config.get("_target_"), str) else set()
        return found.union(*(_targets(v) for v in config.values()))
    if isinstance(config, list):
        return set().union(*(_targets(v) for v in config))
    return set()


def fields_of(node: dict[str, Any], prefix: str = "", target: str | None = None) -> list[dict[str, Any]]:
    """The form fields of a config node: its leaves, then the other parameters of its targets."""
    target = node.get("_target_", target) if isinstance(node.get("_target_"), str) else target
    out = []
    for key, value in node.items():
        if key in RESERVED_KEYS:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += fields_of(value, f"{name}.", target)
        else:
            out.append(_field(name, value, target if "_target_" in node else None, key))
    if "_target_" in node:
        out += _more_fields(node, prefix, target)
    return out


def _more_fields(node: dict[str, Any], prefix: str, target: str | None) -> list[dict[str, Any]]:
    sig = signature_of(target) if target else None
    if sig is None:
        return []
    extra = []
    for key, (_, default) in sig[0].items():
        default = list(default) if isinstance(default, tuple) else default
        plain = isinstance(default, _JSONABLE) or (
            isinstance(default, list) and all(isinstance(v, _JSONABLE) for v in default)
        )
        if key not in node and key not in ("self",) and plain:
            extra.append({**_field(f"{prefix}{key}", default, target, key), "more": True})
    return extra


def _field(name: str, default: Any, target: str | None, param: str | None = None) -> dict[str, Any]:
    param = param or name
    sig = signature_of(target) if target else None
    annotation = sig[0][param][0] if sig and param in sig[0] else None
    info = describe(annotation, default) if annotation not in (None, Any) else describe(None, default)
    if annotation is None and default is None:
        info["kind"] = "json"
    return {
        "name": name,
        **info,
        "default": default,
        "linked": isinstance(default, str) and "${" in default,
        "doc": param_docs(target).get(param, "") if target else "",
        "target": target,
    }


def _metrics(task_option: str, config: dict, known: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name, node in config.items():
        if not isinstance(node, dict) or not isinstance(node.get("_target_"), str):
            continue
        if any(m["key"] == name and m["config"] == node for m in known + out):
            continue
        taken = any(m["key"] == name for m in known + out)
        out.append(
            {
                "id": f"{name}@{task_option}" if taken else name,
                "key": name,
                "config": node,
                "target": node["_target_"],
                "from_task": task_option,
                "doc": node["_target_"],
                "fields": fields_of(node),
            }
        )
    return out
