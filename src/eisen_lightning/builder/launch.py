"""``eisen builder``: start the builder's server and print its address."""

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)

DEFAULT_CONFIG_DIR = "conf_user"


def parser() -> argparse.ArgumentParser:
    """The command line of ``eisen builder``."""
    p = argparse.ArgumentParser(
        prog="eisen builder",
        description="A local page that composes experiments by drag and drop, validates them with Hydra, "
        "saves them as experiment/NAME.yaml and runs them.",
    )
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument(
        "--config-dir",
        default=None,
        help=f"where experiments are saved, as experiment/NAME.yaml (default: ./{DEFAULT_CONFIG_DIR}); "
        "run them with python train.py --config-dir DIR +experiment=NAME",
    )
    p.add_argument(
        "--repo-conf",
        action="store_true",
        help="save into the conf/ tree of this source checkout (then python train.py +experiment=NAME)",
    )
    p.add_argument(
        "--allow-target",
        action="append",
        default=[],
        metavar="PATTERN",
        help="also accept _target_s matching this fnmatch pattern (e.g. 'mylab.nets.*'); repeatable",
    )
    p.add_argument("--open", action="store_true", help="open the page in the default web browser")
    return p


def main(argv: Sequence[str] | None = None, say: Callable[[str], Any] | None = None) -> int:
    """Start the server; Ctrl+C stops it (and any run it started).

    Args:
        argv: The arguments after ``eisen builder``.
        say: Where the address and progress lines go (the ``eisen`` command prints them);
            the package logger by default.

    Returns:
        The exit status.
    """
    from eisen_lightning.builder.server import make_server, package_conf_dir

    args = parser().parse_args(argv)
    if args.repo_conf and args.config_dir:
        parser().error("give either --config-dir or --repo-conf")
    config_dir = Path(args.config_dir or DEFAULT_CONFIG_DIR)
    if args.repo_conf:
        config_dir = package_conf_dir()
        if "site-packages" in config_dir.parts or not (config_dir.parent / "setup.py").is_file():
            parser().error(f"--repo-conf needs a source checkout; {config_dir} is an installed package")
    say = say or log.info
    say(f"eisen builder: reading the config tree; experiments go to {config_dir.resolve()}/experiment")
    server = make_server(config_dir, port=args.port, allow=args.allow_target)
    say(f"eisen builder: open {server.url}  (Ctrl+C stops)")
    if args.open:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.runs.stop_all()
        server.server_close()
    return 0
