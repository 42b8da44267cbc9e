"""The ``eisen`` command: ``eisen train|eval OVERRIDES``; ``python train.py OVERRIDES`` is ``eisen train``."""

import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

CONFIG_PATH = "pkg://eisen_lightning.conf"  # the package of preflight.CONFIG_MODULE

USAGE = """usage: eisen VERB [HYDRA OVERRIDES ...]

verbs:
  train            fit a task (python train.py is the same); plain `eisen train` runs the offline demo
  eval             validation and test stages of a checkpoint: eisen eval ckpt_path=CKPT [+experiment=NAME]
  predict          label maps of new images in their own geometry:
                   eisen predict ckpt_path=CKPT input=PATH [output=DIR] [output_format=nii.gz]
                   eisen predict model=MODEL.onnx input=PATH  (onnxruntime alone, no training config)
  export           ONNX model + pipeline spec, parity-checked: eisen export ckpt_path=CKPT [output=DIR]
  serve            HTTP segmentation server: eisen serve model=MODEL.onnx [port=8000] [host=127.0.0.1]
  verify           read every file of the configured data set once, report all problems
  verify-geometry  eisen verify-geometry A B: compare the shape, spacing, origin and direction of two images
  download         eisen download NAME [TASK] [--data-dir DIR]: fetch, verify and unpack a public data set;
                   eisen download --list shows every data set and where it goes
  builder          a local web page that composes, validates, saves and runs experiments:
                   eisen builder [--port N] [--config-dir DIR] (docs/builder.md)

examples:
  eisen train +experiment=decathlon data.task=Task04_Hippocampus
  eisen train -m +experiment=decathlon net=unet3d optimizer.lr=1e-3,3e-4
  eisen eval ckpt_path=outputs/train/runs/DATE/checkpoints/best.ckpt

`eisen VERB --help` lists the config groups and their options.
"""


def _train(cfg: Any) -> float | None:
    from eisen_lightning import run

    metrics = run.train(cfg)
    _print_summary(cfg, metrics, "training")
    return metrics.get(cfg.get("optimized_metric"))


def _eval(cfg: Any) -> float | None:
    from eisen_lightning import run

    metrics = run.evaluate(cfg)
    _print_summary(cfg, metrics, "evaluation")
    return metrics.get(cfg.get("optimized_metric"))


def _predict(cfg: Any) -> None:
    if cfg.get("model"):
        from eisen_lightning.export import predict_onnx as predict
    else:
        from eisen_lightning.predict import predict

    report = predict(cfg)
    print(report.text(), flush=True)
    if report.failures:
        raise SystemExit(1)


def _export(cfg: Any) -> None:
    from eisen_lightning.export import export_checkpoint

    result = export_checkpoint(cfg)
    print(f"exported {result.model_path}\npipeline spec {result.spec_path}", flush=True)
    print(f"parity: max abs diff {result.max_abs_diff:.2e} (onnxruntime vs torch)", flush=True)


def _serve(cfg: Any) -> None:
    from eisen_lightning.serve import make_server

    server = make_server(cfg)
    print(f"serving {cfg.model} on {server.url} (GET /info, POST /predict); Ctrl+C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _verify(cfg: Any) -> None:
    from eisen_lightning import run

    report = run.verify(cfg)
    print(report.text(), flush=True)
    if not report.ok:
        raise SystemExit(1)


def _verify_geometry(args: Sequence[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="eisen verify-geometry", description=__doc__)
    parser.add_argument("first", help="an image file or DICOM folder")
    parser.add_argument("second", help="the image to compare it with")
    parsed = parser.parse_args(list(args))
    from eisen_lightning.geometry import compare_files

    differences = compare_files(parsed.first, parsed.second)
    if not differences:
        print(f"same geometry: {parsed.first} and {parsed.second}")
        return 0
    print(f"geometry differs between {parsed.first} and {parsed.second}:")
    print("\n".join(f"  - {d}" for d in differences))
    return 1


def _download(args: Sequence[str]) -> int:
    import argparse
    import os

    from eisen_lightning.data import download as dl
    from eisen_lightning.data.sources import listing

    parser = argparse.ArgumentParser(prog="eisen download", description=dl.__doc__.split("\n")[0])
    parser.add_argument("name", nargs="?", help="data set name (see --list)")
    parser.add_argument("task", nargs="?", help="task of a data set that has several (Decathlon)")
    parser.add_argument("--list", action="store_true", help="list every data set and its folder")
    default_dir = os.environ.get("EISEN_DATA_DIR", "data")
    parser.add_argument("--data-dir", default=default_dir, help=f"data directory (default: {default_dir})")
    parser.add_argument("--mirror", help=f"base URL serving the files by name (default: ${dl.MIRROR_ENV})")
    parsed = parser.parse_args(list(args))
    if parsed.list or not parsed.name:
        print(listing())
        return 0 if parsed.list else 2
    try:
        result = dl.download(parsed.name, parsed.data_dir, parsed.task, mirror=parsed.mirror)
    except dl.ManualDownloadRequired as error:
        print(error, file=sys.stderr)
        return 3
    except (dl.DownloadError, ValueError) as error:
        print(f"eisen download: {error}", file=sys.stderr)
        return 1
    where = "downloaded to" if result.downloaded else "already in"
    print("\n".join([*result.notes, f"{where} {result.folder}"]))
    return 0


#: verb -> (root config, function, overrides put before the user's)
VERBS: dict[str, tuple[str, Callable[[Any], Any], list[str]]] = {
    "train": ("train", _train, []),
    "eval": ("eval", _eval, []),
    "predict": ("predict", _predict, []),
    "export": ("export", _export, []),
    "serve": ("serve", _serve, []),
    "verify": ("train", _verify, ["task_name=verify"]),
}


def _builder(args: Sequence[str]) -> int:
    from eisen_lightning.builder import main as builder_main

    return builder_main(list(args), say=lambda line: print(line, flush=True))


PLAIN_VERBS: dict[str, Callable[[Sequence[str]], int]] = {
    "verify-geometry": _verify_geometry,
    "download": _download,
    "builder": _builder,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``eisen`` console script.

    Args:
        argv: Arguments after the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The process exit status.

    >>> main(["--help"])  # doctest: +ELLIPSIS
    usage: eisen VERB [HYDRA OVERRIDES ...]
    ...
    0
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if not args or args[0] in ("-h", "--help", "help"):
            print(USAGE)
            return 0
        if args[0] in PLAIN_VERBS:
            _quiet_known_noise()
            return PLAIN_VERBS[args[0]](args[1:])
    except BrokenPipeError:  # the reader went away (`eisen --help | head -1`): no traceback
        _stdout_to_devnull()
        return 1
    verb, overrides = args[0], args[1:]
    if verb not in VERBS:
        verbs = sorted([*VERBS, *PLAIN_VERBS])
        print(f"eisen: unknown verb {verb!r}; choose one of {verbs}\n\n{USAGE}", file=sys.stderr)
        return 2
    config_name, function, defaults = VERBS[verb]
    _quiet_known_noise()
    from eisen_lightning.preflight import check_plugins, preflight

    try:
        check_plugins(overrides)
        overrides = preflight(config_name, [*defaults, *overrides])
    except (ValueError, FileNotFoundError) as error:
        print(f"eisen {verb}: {error}", file=sys.stderr)
        return 2
    run_hydra(config_name, function, overrides)
    return 0


def _stdout_to_devnull() -> None:
    """Point stdout at the null device, so that the interpreter's last flush finds no broken pipe."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def run_hydra(config_name: str, function: Callable[[Any], Any], overrides: Sequence[str]) -> None:
    """Run ``function`` under ``hydra.main`` with ``overrides`` as its command line.

    Hydra reads ``sys.argv``, so it is set to the overrides while Hydra parses them and restored
    before ``function`` runs: Lightning's DDP launcher re-runs the original command line in its
    child processes, and that must still name the verb.
    """
    import hydra

    from eisen_lightning.preflight import user_errors, user_message
    from eisen_lightning.sweeps import launches_sweep_job, run_sweep_job

    original = list(sys.argv)

    def task_function(cfg: Any) -> Any:
        sys.argv = original
        if launches_sweep_job():
            return run_sweep_job(function, cfg, original, overrides)
        try:
            return function(cfg)
        except user_errors() as error:
            import os

            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"eisen: {user_message(error)}\n(HYDRA_FULL_ERROR=1 shows the traceback)", file=sys.stderr)
            raise SystemExit(1) from None

    task_function.__module__ = __name__
    sys.argv = [original[0], *overrides]
    try:
        hydra.main(config_path=CONFIG_PATH, config_name=config_name, version_base="1.3")(task_function)()
    finally:
        sys.argv = original


def _quiet_known_noise() -> None:
    """Silence start-up messages of the libraries that say nothing about the user's run."""
    import logging
    import warnings

    logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
    # MONAI imports optuna when it is installed (the [optuna] extra), and optuna's alembic logs its plugins
    logging.getLogger("alembic").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*nvImageCodec.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")


def _print_summary(cfg: Any, metrics: dict[str, float], what: str) -> None:
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank != 0:
        return
    run_dir = Path(cfg.paths.output_dir)
    lines = [f"\n=== eisen-lightning {what} finished ===", f"run directory : {run_dir}"]
    for stage in ("val", "test"):
        lines += _dice_lines(metrics, stage)
    best = run_dir / "checkpoints" / "best.ckpt"
    if best.is_file():
        lines.append(f"best checkpoint: {best}")
    if (run_dir / "metrics.json").is_file():
        lines.append(f"metrics       : {run_dir / 'metrics.json'}")
    if (run_dir / "tensorboard").is_dir():
        lines.append(f"tensorboard   : tensorboard --logdir {run_dir / 'tensorboard'}")
    print("\n".join(lines), flush=True)


def _dice_lines(metrics: dict[str, float], stage: str) -> list[str]:
    prefix = f"{stage}/dice/"
    per_class = {k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)}
    if f"{stage}/dice" not in metrics:
        return []
    lines = [f"{stage} mean Dice: {_fmt(metrics[f'{stage}/dice'])}"]
    lines += [f"  {name:<20} {_fmt(value)}" for name, value in per_class.items()]
    if f"{stage}/dice_best" in metrics:
        lines.append(f"  best epoch mean Dice {_fmt(metrics[f'{stage}/dice_best'])}")
    return lines


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


if __name__ == "__main__":
    sys.exit(main())
