"""The page's experiment (a spec) to a Hydra experiment file and back.

A spec is ``{"name", "nodes": [{"group", "option", "params": {field: value}}], "metrics": [{"id",
"params"}], "run": {key: value}}``. The file holds ``override /group: option`` for every group
and only the values that differ from the options' defaults.
"""

import re
from pathlib import Path
from typing import Any

import yaml

from eisen_lightning.builder import compose
from eisen_lightning.builder.catalog import Palette
from eisen_lightning.builder.fields import RESERVED_KEYS

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_MISSING = object()


def field_defaults(fields: list[dict[str, Any]]) -> dict[str, Any]:
    """``field name -> default`` of a component's form."""
    return {f["name"]: f["default"] for f in fields}


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[last] = value


def _changed(params: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if defaults.get(k, _MISSING) != v}


def to_experiment(spec: dict[str, Any], palette: Palette) -> dict[str, Any]:
    """The experiment config of a (checked) spec, as plain data."""
    by_group: dict[str, list[dict[str, Any]]] = {}
    for node in spec.get("nodes", []):
        by_group.setdefault(node["group"], []).append(node)
    overrides: list[Any] = []
    body: dict[str, Any] = {}
    for group in palette.groups:
        nodes = by_group.get(group["name"], [])
        options = [n["option"] for n in nodes]
        if not options and not group["default"]:
            continue
        choice: Any = (options if group["multiple"] else options[0]) if options else None
        overrides.append({f"override /{group['name']}": choice})
        for node in nodes:
            component = palette.component(group["name"], node["option"])
            for key, value in _changed(node.get("params", {}), field_defaults(component["fields"])).items():
                _set(body, f"{group['name']}.{key}", value)
    _metrics_into(spec, palette, body)
    for key, value in _changed(spec.get("run", {}), field_defaults(palette.run["fields"])).items():
        body[key] = value
    return {"defaults": overrides, **body}


def _metrics_into(spec: dict[str, Any], palette: Palette, body: dict[str, Any]) -> None:
    task = next((n for n in spec.get("nodes", []) if n["group"] == "task"), None)
    component = palette.component("task", task["option"]) if task else None
    own = set(component.get("metrics", [])) if component else set()
    for entry in spec.get("metrics", []):
        metric = palette.metric(entry["id"])
        params = entry.get("params", {})
        if metric["id"] in own:
            changed = _changed(params, field_defaults(metric["fields"]))
        else:
            changed = {**metric["config"], **params}
        for key, value in changed.items():
            _set(body, f"task.metrics.{metric['key']}.{key}", value)


def render(spec: dict[str, Any], palette: Palette, command: str) -> str:
    """The text of ``experiment/NAME.yaml``."""
    experiment = to_experiment(spec, palette)
    lines = ["# @package _global_", f"# Written by `eisen builder`. Run: {command}", "defaults:"]
    for entry in experiment.pop("defaults"):
        ((key, value),) = entry.items()
        text = "null" if value is None else (f"[{', '.join(value)}]" if isinstance(value, list) else value)
        lines.append(f"  - {key}: {text}")
    body = yaml.safe_dump(experiment, sort_keys=False, width=100) if experiment else ""
    return "\n".join(lines) + "\n" + body


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``dotted.key -> leaf`` of a nested mapping (lists and empty mappings are leaves)."""
    if not isinstance(node, dict) or not node:
        return {prefix.rstrip("."): node} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}{key}."))
    return out


def from_experiment(name: str, palette: Palette, config_dirs: list[Path]) -> dict[str, Any]:
    """The spec of an existing experiment (``+experiment=NAME``), for the page to edit.

    Raises:
        hydra.errors.HydraException: If the experiment does not compose.
    """
    from omegaconf import OmegaConf

    chosen = compose.selected_options(config_dirs, [f"+experiment={name}"])
    cfg = OmegaConf.to_container(compose.compose(config_dirs, [f"+experiment={name}"]), resolve=False)
    nodes = []
    for group in palette.groups:
        options = chosen.get(group["name"], [])
        nodes += _nodes(group["name"], options, cfg.get(group["name"]), palette)
    task = cfg.get("task") if isinstance(cfg.get("task"), dict) else {}
    run = {f["name"]: cfg.get(f["name"], f["default"]) for f in palette.run["fields"]}
    return {
        "name": name,
        "nodes": nodes,
        "metrics": _metric_entries(task.get("metrics") or {}, palette),
        "run": run,
    }


def _nodes(group: str, options: list[str], node: Any, palette: Palette) -> list[dict[str, Any]]:
    components = [palette.component(group, o) for o in options]
    components = [c for c in components if c is not None]
    leaves = flatten({k: v for k, v in (node or {}).items() if not (group == "task" and k == "metrics")})
    leaves = {k: v for k, v in leaves.items() if k.rpartition(".")[2] not in RESERVED_KEYS}
    out = []
    for component in components:
        names = {f["name"] for f in component["fields"]}
        mine = {k: leaves.pop(k) for k in list(leaves) if k in names}
        out.append({"group": group, "option": component["option"], "params": mine})
    if out and leaves:
        out[0]["params"].update(leaves)
    return out


def _metric_entries(metrics: dict[str, Any], palette: Palette) -> list[dict[str, Any]]:
    entries = []
    for key, config in metrics.items():
        if not isinstance(config, dict):
            continue
        same = [m for m in palette.metrics if m["key"] == key and m["config"] == config]
        close = [m for m in palette.metrics if m["key"] == key and m["target"] == config.get("_target_")]
        metric = (same or close or [None])[0]
        if metric is not None:
            params = {k: v for k, v in flatten(config).items() if k.rpartition(".")[2] not in RESERVED_KEYS}
            entries.append({"id": metric["id"], "params": params})
    return entries
