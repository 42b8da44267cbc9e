"""Server-side validation of a spec with the code the trainer uses.

Layers: the spec's structure (known components, how many of each group, a loss and a net that fit
the task, known fields of the right type), then Hydra's compose of the experiment file, then the
resolution of every interpolation, then a check of every ``_target_`` against the palette (or the
allowlist) and of its arguments against its signature. Errors name the node and the field.
"""

import fnmatch
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eisen_lightning.builder import compose
from eisen_lightning.builder.catalog import RUN_GROUP, TASK_FITS, TRANSFORM_FITS, Palette
from eisen_lightning.builder.fields import RESERVED_KEYS, check_value, coerce, signature_of
from eisen_lightning.builder.spec import NAME_PATTERN, render

_SAFE_RESOLVERS = {"oc.env", "oc.select", "hydra"}


@dataclass
class Result:
    """The outcome of a validation: errors ``{node, field, msg}``, else the file text."""

    errors: list[dict[str, str]] = field(default_factory=list)
    text: str = ""

    @property
    def ok(self) -> bool:
        """Whether the spec passed every check."""
        return not self.errors

    def add(self, node: str, name: str, msg: str) -> None:
        """Record an error of ``node`` (a group, ``metric:ID`` or ``run``) and its field ``name``."""
        self.errors.append({"node": node, "field": name, "msg": msg})


def check(spec: Any, palette: Palette, config_dirs: list[Path], allow: list[str], command: str) -> Result:
    """Validate ``spec``; on success ``Result.text`` is the experiment file."""
    result = Result()
    if not isinstance(spec, dict) or not isinstance(spec.get("nodes"), list):
        result.add("experiment", "", "the request must be an object with a list of nodes")
        return result
    name = str(spec.get("name", ""))
    if not NAME_PATTERN.match(name):
        result.add("experiment", "name", f"{name!r}: use a letter, then letters, digits, _ or - (64 at most)")
    _check_structure(spec, palette, result)
    if not result.ok:
        return result
    result.text = render(spec, palette, command)
    _check_composed(name, result, palette, config_dirs, allow)
    return result


def _check_structure(spec: dict[str, Any], palette: Palette, result: Result) -> None:
    seen: dict[str, list[dict[str, Any]]] = {}
    for node in spec["nodes"]:
        group, option = str(node.get("group")), str(node.get("option"))
        component = palette.component(group, option)
        if component is None:
            result.add(group, "", f"unknown component {group}/{option}; choose one from the palette")
            continue
        seen.setdefault(group, []).append(node)
        _check_params(group, node, component["fields"], result)
    for group in palette.groups:
        count = len(seen.get(group["name"], []))
        if group["required"] and count == 0:
            result.add(
                group["name"],
                "",
                f"an experiment needs one {group['name']}: drag one from '{group['title']}'",
            )
        if count > 1 and not group["multiple"]:
            result.add(
                group["name"], "", f"only one {group['name']} per experiment, got {count}; remove the others"
            )
    _check_fits(seen, palette, result)
    _check_metrics(spec, seen, palette, result)
    _check_params(RUN_GROUP, {"params": spec.get("run", {})}, palette.run["fields"], result)


def _check_params(node_name: str, node: dict[str, Any], fields: list[dict[str, Any]], result: Result) -> None:
    known = {f["name"]: f for f in fields}
    params = node.get("params") or {}
    if not isinstance(params, dict):
        result.add(node_name, "", "params must be a mapping of field -> value")
        return
    for key, value in list(params.items()):
        spec_field = known.get(key)
        if spec_field is None or key.rpartition(".")[2] in RESERVED_KEYS:
            result.add(
                node_name,
                key,
                f"unknown parameter {key!r}; the form lists the parameters this component takes",
            )
            continue
        params[key] = value = coerce(spec_field, value)
        problem = check_value(spec_field, value, spec_field["default"]) or _resolver_problem(value)
        if problem:
            result.add(node_name, key, problem)


def _resolver_problem(value: Any) -> str | None:
    names = set(re.findall(r"\$\{([\w.]+):", value)) if isinstance(value, str) else set()
    unsafe = names - _SAFE_RESOLVERS
    return (
        f"resolvers {sorted(unsafe)} are not allowed here; use {sorted(_SAFE_RESOLVERS)}" if unsafe else None
    )


def _check_fits(seen: dict[str, list[dict[str, Any]]], palette: Palette, result: Result) -> None:
    task = seen.get("task", [None])[0]
    kind = palette.component("task", task["option"])["kind"] if task else None
    for group, tag in (("loss", "input"), ("net", "output")):
        node = seen.get(group, [None])[0]
        if not node or kind not in TASK_FITS:
            continue
        have = palette.component(group, node["option"])["tags"].get(tag)
        allowed = TASK_FITS[kind][group]
        if have and have not in allowed:
            fix = f"choose a {group} for {allowed}"
            result.add(group, "", f"{group} {node['option']} is for {have} but the task is {kind}: {fix}")
    for node in seen.get("transforms", []) if kind in TRANSFORM_FITS else []:
        have = palette.component("transforms", node["option"])["tags"].get("augments")
        if have and have not in TRANSFORM_FITS[kind]:
            result.add(
                "transforms",
                node["option"],
                f"transform {node['option']} is a {have} augmentation (it moves the label with the image) "
                f"but the task is {kind}, whose label is not an image: remove it or choose a "
                f"{' or '.join(TRANSFORM_FITS[kind])} one",
            )


def _check_metrics(spec: dict[str, Any], seen: dict[str, Any], palette: Palette, result: Result) -> None:
    task = seen.get("task", [None])[0]
    own = palette.component("task", task["option"]).get("metrics", []) if task else []
    given = []
    for entry in spec.get("metrics", []) or []:
        metric = palette.metric(str(entry.get("id")))
        if metric is None:
            result.add("metrics", "", f"unknown metric {entry.get('id')!r}; choose one from the palette")
            continue
        given.append(metric["id"])
        _check_params(f"metric:{metric['id']}", entry, metric["fields"], result)
    for missing in sorted(set(own) - set(given)):
        result.add(
            f"metric:{missing}",
            "",
            f"the task's own metric {missing!r} cannot be removed; choose another task",
        )


def _check_composed(
    name: str, result: Result, palette: Palette, config_dirs: list[Path], allow: list[str]
) -> None:
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    with tempfile.TemporaryDirectory(prefix="eisen-builder-") as tmp:
        (Path(tmp) / "experiment").mkdir()
        (Path(tmp) / "experiment" / f"{name}.yaml").write_text(result.text)
        try:
            cfg = compose.compose(
                [Path(tmp), *config_dirs], [f"+experiment={name}", *compose.DATASET_PLACEHOLDERS]
            )
            resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        except OmegaConfBaseException as error:
            _add_at(result, palette, str(getattr(error, "full_key", "") or ""), str(error).splitlines()[0])
            return
        except HydraException as error:
            result.add("experiment", "", " ".join(str(error).split())[:400])
            return
    check_targets(resolved, palette, allow, result)


def check_targets(node: Any, palette: Palette, allow: list[str], result: Result, path: str = "") -> None:
    """Every ``_target_`` is in the palette or the allowlist, and its arguments bind to its signature."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            check_targets(item, palette, allow, result, f"{path}[{i}]")
        return
    if not isinstance(node, dict):
        return
    target = node.get("_target_")
    if target is not None:
        _check_target(str(target), node, path, palette, allow, result)
    for key, value in node.items():
        check_targets(value, palette, allow, result, f"{path}.{key}" if path else str(key))


def _check_target(
    target: str, node: dict, path: str, palette: Palette, allow: list[str], result: Result
) -> None:
    if target not in palette.targets and not any(fnmatch.fnmatchcase(target, p) for p in allow):
        _add_at(result, palette, f"{path}._target_", f"_target_ {target!r} is not a component of the palette")
        return
    sig = signature_of(target)
    if sig is None:
        return
    params, var_kw = sig
    kwargs = {k: v for k, v in node.items() if k not in RESERVED_KEYS}
    for key in kwargs:
        if key not in params and not var_kw:
            _add_at(result, palette, f"{path}.{key}", f"{target} takes no argument {key!r}")


def _add_at(result: Result, palette: Palette, path: str, msg: str) -> None:
    """Pin an error at a config path (``net.channels``) to its node and field."""
    head, _, rest = path.partition(".")
    if head == "task" and rest.startswith("metrics."):
        key, _, name = rest.removeprefix("metrics.").partition(".")
        result.add(f"metric:{key}", name, msg)
    elif palette.group(head) is not None:
        result.add(head, rest, msg)
    elif any(f["name"] == head for f in palette.run["fields"]):
        result.add(RUN_GROUP, head, msg)
    else:
        result.add("experiment", path, msg)
