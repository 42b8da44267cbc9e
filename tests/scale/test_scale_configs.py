"""Scale-out configs: FSDP, precision, multi-node DDP, the Optuna search and the SLURM launcher."""

import os

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import compose
from eisen_lightning.models.checkpointing import block_classes


def _compose_with_hydra(overrides, tmp_path):
    """Compose like `python train.py` and keep the hydra node (launcher and sweeper settings)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    base = [f"paths.data_dir={tmp_path / 'data'}", f"paths.output_dir={tmp_path / 'run'}"]
    with initialize_config_module("eisen_lightning.conf", version_base="1.3"):
        return hydra_compose("train", overrides=base + overrides, return_hydra_config=True)


def test_fsdp_strategy_shards_and_checkpoints_the_blocks(tmp_path):
    from monai.networks.blocks import ResidualUnit
    from pytorch_lightning.strategies import FSDPStrategy

    cfg = compose(["trainer=fsdp", "trainer.precision=bf16-mixed"], tmp_path)
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "bf16-mixed"
    strategy = instantiate(cfg.trainer.strategy)
    assert isinstance(strategy, FSDPStrategy)
    assert strategy._state_dict_type == "full"
    policy = strategy._activation_checkpointing_kwargs["auto_wrap_policy"]
    assert ResidualUnit in policy._module_classes
    assert ResidualUnit in strategy.kwargs["auto_wrap_policy"]._module_classes
    if not torch.cuda.is_available():
        pytest.skip("FSDP trains on GPUs only; the strategy was built and checked")


def test_fsdp_without_activation_checkpointing(tmp_path):
    cfg = compose(["trainer=fsdp", "trainer.strategy.activation_checkpointing_policy=null"], tmp_path)
    assert instantiate(cfg.trainer.strategy)._activation_checkpointing_kwargs == {}


@pytest.mark.parametrize("precision", ["32", "16-mixed", "bf16-mixed"])
def test_precision_override_reaches_the_trainer(precision, tmp_path):
    cfg = compose([f"trainer.precision={precision}", "trainer.accelerator=cpu", "~logger"], tmp_path)
    trainer = instantiate(cfg.trainer, logger=False)
    # Lightning runs float16 autocast on GPUs only; on a CPU it takes bf16-mixed instead
    expected = {"32": "32-true", "16-mixed": "bf16-mixed", "bf16-mixed": "bf16-mixed"}[precision]
    assert trainer.precision == expected


def test_block_classes_name_what_is_wrong():
    with pytest.raises(ValueError, match="cannot import 'monai.nope.Block'"):
        block_classes(["monai.nope.Block"])
    with pytest.raises(ValueError, match="is not a torch.nn.Module class"):
        block_classes(["collections.OrderedDict"])
    with pytest.raises(ValueError, match="non-empty list"):
        block_classes("monai.networks.blocks.ResidualUnit")


def test_optuna_search_optimises_the_returned_metric(tmp_path):
    cfg = _compose_with_hydra(["hparams_search=optuna"], tmp_path)
    sweeper = cfg.hydra.sweeper
    assert cfg.hydra.mode.name == "MULTIRUN"
    assert sweeper._target_.endswith("OptunaSweeper")
    assert sweeper.direction == "maximize" and cfg.optimized_metric == "val/dice"
    assert set(sweeper.params) == {"optimizer.lr", "loss"}
    sampler = instantiate(sweeper.sampler)
    assert type(sampler).__name__ == "TPESampler"
    lower = _compose_with_hydra(["hparams_search=optuna", "optimized_mode=min"], tmp_path)
    assert lower.hydra.sweeper.direction == "minimize"


def test_every_loss_of_the_search_space_exists(tmp_path):
    from conftest import CONF

    cfg = _compose_with_hydra(["hparams_search=optuna"], tmp_path)
    choices = str(cfg.hydra.sweeper.params.loss)[len("choice(") : -1].replace(" ", "").split(",")
    assert all((CONF / "loss" / f"{name}.yaml").is_file() for name in choices), choices


def test_slurm_launcher_sizes_the_job_from_the_trainer(tmp_path):
    overrides = ["hydra/launcher=slurm", "trainer=ddp_multinode", "trainer.num_nodes=2", "trainer.devices=4"]
    cfg = _compose_with_hydra([*overrides, "hydra.launcher.partition=gpu"], tmp_path)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert (launcher["nodes"], launcher["tasks_per_node"], launcher["gpus_per_node"]) == (2, 4, 4)
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.num_nodes == 2


def test_slurm_job_script_asks_for_one_task_per_gpu(tmp_path, monkeypatch):
    """The #SBATCH lines submitit writes from the launcher's settings (as the launcher passes them)."""
    import submitit

    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 1\n")
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:{os.environ['PATH']}")  # submitit looks for srun; never run
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    overrides = ["hydra/launcher=slurm", "trainer=ddp_multinode", "trainer.num_nodes=2", "trainer.devices=4"]
    cfg = _compose_with_hydra(overrides, tmp_path)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    params.pop("_target_")
    init = {"folder": tmp_path / "submitit", "slurm_max_num_timeout": params.pop("max_num_timeout")}
    executor = submitit.AutoExecutor(cluster="slurm", **init)
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(
        **{k if k in base else f"slurm_{k}": v for k, v in params.items() if k != "submitit_folder"}
    )
    script = executor._executor._make_submission_file_text("python -m train", "0")
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4"):
        assert line in script, script


def test_slurm_launcher_needs_a_number_of_devices(tmp_path):
    cfg = _compose_with_hydra(["hydra/launcher=slurm", "trainer=ddp"], tmp_path)
    with pytest.raises(Exception, match=r"trainer.devices.*'auto'.*could not be converted to Integer"):
        OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
