"""Hydra multirun sweeps whose jobs train with DDP: one run directory per job, no sweep per rank."""

import sys
from collections.abc import Callable, Sequence
from typing import Any

#: environment variables Lightning's DDP launcher sets in the process that starts the other ranks
_LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
#: Hydra overrides that belong to the sweep, not to one of its jobs
_SWEEP_ONLY = ("hydra.mode", "hydra.sweep", "hydra.launcher", "hydra/sweeper", "hydra/launcher")
_CONFIG_FLAGS = ("--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn")


def launches_sweep_job() -> bool:
    """Whether this process runs a job of a multirun and would start its DDP ranks itself."""
    import os

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.get().mode == RunMode.MULTIRUN and "LOCAL_RANK" not in os.environ


def run_sweep_job(
    function: Callable[[Any], Any], cfg: Any, original: list[str], overrides: Sequence[str]
) -> Any:
    """Run one job of a sweep so that the DDP processes it starts join this job only.

    Lightning's DDP launcher starts ranks > 0 by re-running ``sys.argv`` with ``hydra.run.dir`` set
    to Hydra's run dir; a sweep's command line would start the whole sweep again in every rank. So,
    during the job, the command line is this job's own overrides in RUN mode and the run dir is the
    job's directory; afterwards the process group and the launcher's environment are released, so
    that the next job starts processes of its own.
    """
    import os

    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    hydra_cfg = HydraConfig.get()
    sys.argv = job_argv(original, overrides, hydra_cfg)
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
    saved = {name: os.environ.get(name) for name in _LAUNCH_ENV}
    try:
        return function(cfg)
    finally:
        sys.argv = original
        release_distributed(saved)


def job_argv(original: list[str], overrides: Sequence[str], hydra_cfg: Any) -> list[str]:
    """The command line that runs only the current job of a sweep (``hydra.mode=RUN``).

    ``original`` is the program and verb followed by the user's arguments, all of which Hydra
    received among ``overrides``: the program and verb are kept, then Hydra's config-search
    flags, then the job's overrides as Hydra resolved them.
    """
    given = next((i for i, arg in enumerate(original) if i and arg in overrides), len(original))
    prefix, user = original[:given], original[given:]
    flags = [
        arg
        for i, arg in enumerate(user)
        if arg.split("=")[0] in _CONFIG_FLAGS or (i and user[i - 1] in _CONFIG_FLAGS)
    ]
    hydra_overrides = [o for o in hydra_cfg.overrides.hydra if not o.lstrip("+~").startswith(_SWEEP_ONLY)]
    return [*prefix, *flags, *hydra_cfg.overrides.task, *hydra_overrides, "hydra.mode=RUN"]


def release_distributed(saved: dict[str, str | None]) -> None:
    """Destroy the job's process group and restore the launcher's environment variables."""
    import os

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
