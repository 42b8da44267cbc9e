"""Checks of a command line before Hydra runs it, and the short messages of user errors.

The config is composed once first, so that a misspelt key, an unknown option, a value of the wrong
type or an unwritable run directory is reported in one line that names the key and the fix, before
anything is built; ``resume=true|PATH`` (and ``ckpt_path=last``) find the run they continue there.
Errors about the user's files and config met while the run is built are reported in a few lines.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

CONFIG_MODULE = "eisen_lightning.conf"


def preflight(config_name: str, overrides: list[str]) -> list[str]:
    """Compose the config once before Hydra runs: short errors for bad overrides, and ``resume``.

    A misspelt key, an unknown option or a value of the wrong type (``trainer.max_epochs=abc``)
    is reported in one line that names the key and the fix. ``resume=true|PATH`` (or
    ``ckpt_path=last``) adds the ``hydra.run.dir`` of the run it continues. Sweeps (``-m``) and
    Hydra flags are left to Hydra.

    Raises:
        ValueError: If the overrides do not compose.
        FileNotFoundError: If ``resume`` finds no run to continue.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    if any(arg.startswith("-") for arg in overrides):
        return overrides
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        if any(o.is_sweep_override() for o in parsed):
            return overrides
        values = [o for o in parsed if "." in o.key_or_group and not (o.is_add() or o.is_delete())]
        plain = [o.input_line for o in parsed if o not in values or o.key_or_group.startswith("hydra.")]
        _check_types(_compose(config_name, plain), values)
        cfg = _compose(config_name, overrides)
    except HydraException as error:
        raise ValueError(_hydra_message(error)) from None
    if _selected(cfg, "hydra.mode").endswith("MULTIRUN"):  # a sweep chosen by a config (hparams_search)
        return overrides
    run_dir = _selected(cfg, "hydra.run.dir")  # given, resumed, or the one made here (not a second later)
    given = any(o.key_or_group == "hydra.run.dir" for o in parsed)
    extra = [] if given else [_quoted("hydra.run.dir", run_dir)]
    resumed = _resumed_dir(cfg, parsed)
    if resumed is not None:
        resume = [] if any(o.key_or_group == "resume" for o in parsed) else ["resume=true"]
        run_dir, extra = str(resumed), [_quoted("hydra.run.dir", str(resumed)), *resume]
    _check_writable(run_dir)
    return [*overrides, *extra]


def _quoted(key: str, value: str) -> str:
    return f"{key}='{value}'" if "'" not in value else f"{key}={value}"


def _selected(cfg: Any, key: str) -> str:
    from omegaconf import OmegaConf

    return str(OmegaConf.select(cfg, key))


def _check_writable(run_dir: str) -> None:
    """Make the run directory now, so an unwritable place is reported before anything starts."""
    import tempfile

    try:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=run_dir).close()
    except OSError as error:
        raise ValueError(
            f"hydra.run.dir={run_dir}: cannot write there ({error.strerror or error}); choose a writable "
            "folder with hydra.run.dir=DIR or the EISEN_LOG_DIR environment variable"
        ) from None


def _compose(config_name: str, overrides: list[str]) -> Any:
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    GlobalHydra.instance().clear()
    return cfg


def _check_types(defaults: Any, values: list[Any]) -> None:
    """Refuse a text value where the composed default is a number or a boolean."""
    from omegaconf import OmegaConf

    for override in values:
        default = OmegaConf.select(defaults, override.key_or_group, default=None, throw_on_missing=False)
        value = override.value()
        wanted = {bool: "true or false", int: "an integer", float: "a number"}.get(type(default))
        wrong = isinstance(value, str) or (type(default) is int and isinstance(value, float))
        if wanted and wrong and not (type(default) is float and isinstance(value, int)):
            raise ValueError(
                f"{override.input_line}: {override.key_or_group} must be {wanted} (its default is "
                f"{default!r}), got {value!r}; write e.g. {override.key_or_group}={default!r}"
            )


def _hydra_message(error: Exception) -> str:
    """Hydra's composition error in a few lines, with the nearest existing key as the fix."""
    import difflib
    import re

    text = str(error).strip()
    key = re.search(r"Could not override '([^']+)'", text) or re.search(r"Key '([^']+)' is not in", text)
    lines: list[str] = []
    for line in text.splitlines():
        if "Config search path" in line:
            break
        if line.startswith("\t") and lines:  # Hydra lists the options of a group one per line
            lines[-1] += (" " if lines[-1].endswith(":") else ", ") + line.strip()
        elif line.strip():
            lines.append(line.strip())
    message = "\n".join(lines[:8])
    if key and "." in key.group(1):
        parent, _, name = key.group(1).rpartition(".")
        options = _keys_of(parent)
        close = difflib.get_close_matches(name, options, n=1)
        hint = f"did you mean {parent}.{close[0]}?" if close else f"{parent} has {sorted(options)}"
        message += f"\n{hint} (a new key is added with +{key.group(1)}=VALUE)"
    return message


def _keys_of(path: str) -> list[str]:
    from omegaconf import OmegaConf

    try:
        node = OmegaConf.select(_compose("train", []), path, default=None)
    except Exception:  # the hint is optional; the error itself is reported by the caller
        return []
    return [str(k) for k in node.keys()] if hasattr(node, "keys") else []


def _resumed_dir(cfg: Any, parsed: list[Any]) -> Path | None:
    """The run directory that ``resume`` (or ``ckpt_path=last`` without ``hydra.run.dir``) continues."""
    from eisen_lightning.checkpoint import resume_run_dir

    given = {o.key_or_group for o in parsed}
    resume = cfg.get("resume")
    if cfg.get("ckpt_path") == "last" and resume in (None, False) and "hydra.run.dir" not in given:
        resume = True
    if resume in (None, False, "false", "") or "hydra.run.dir" in given:
        return None
    try:
        return resume_run_dir(resume, Path(_selected(cfg, "hydra.run.dir")).parent)
    except FileNotFoundError as error:
        if cfg.get("resume") in (None, False):  # the user asked with ckpt_path=last
            raise FileNotFoundError(str(error).replace("resume=true:", "ckpt_path=last:", 1)) from None
        raise


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors about the user's files and config: reported in a few lines, without a traceback."""
    from hydra.errors import InstantiationException

    from eisen_lightning.checkpoint import CheckpointMismatchError
    from eisen_lightning.data.datasets.decathlon import LayoutError
    from eisen_lightning.io import ImageReadError

    return (InstantiationException, CheckpointMismatchError, LayoutError, ImageReadError, OSError)


def user_message(error: BaseException) -> str:
    """One or two lines for a user error: the key or file, the problem and the fix."""
    import re

    text = str(error)
    target = re.search(r"Error locating target '([^']+)'", text)
    key = re.search(r"full_key: (\S+)", text)
    if target:
        where = key.group(1) if key else "a config"
        return (
            f"{where}: cannot import _target_ '{target.group(1)}'; give a class importable as "
            "package.module.Class, or choose one of the files of the matching conf/ group"
        )
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror}; choose a writable place with enough free space"
    return text


#: an override that needs a Hydra plugin -> (the plugin's module, the extra that installs it)
_PLUGINS = {
    "hparams_search=optuna": ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
    "hydra/sweeper=optuna": ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
    "hydra/launcher=slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "hydra/launcher=submitit": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
}


def check_plugins(overrides: Sequence[str]) -> None:
    """Fail with the install hint when an override needs a Hydra plugin that is not installed.

    Raises:
        ValueError: Naming the override and the ``pip install`` that provides its plugin.
    """
    from importlib.util import find_spec

    for override in overrides:
        for start, (module, extra) in _PLUGINS.items():
            if override.lstrip("+~").startswith(start) and find_spec(module) is None:
                raise ValueError(
                    f"{override} needs the {module.split('.')[-1]} plugin, which is not installed; "
                    f"install it with: pip install eisen-lightning[{extra}]"
                )
