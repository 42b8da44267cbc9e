"""Training runs started from the page: a subprocess with a fixed argument list, its output and progress."""

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)
_PROGRESS = "eisen_lightning.builder.ProgressFile"


def train_command(config_dir: Path, name: str, run_dir: Path, dry_run: bool) -> list[str]:
    """The argument list of a run of experiment ``name`` (no shell is involved)."""
    progress = run_dir / "progress.jsonl"
    command = [
        sys.executable,
        "-m",
        "eisen_lightning",
        "train",
        "--config-dir",
        str(config_dir),
        f"+experiment={name}",
        f"hydra.run.dir='{run_dir}'",
        f"+callbacks.builder_progress={{_target_: {_PROGRESS}, path: '{progress}'}}",
        "trainer.enable_progress_bar=false",
    ]
    return [*command, "trainer.fast_dev_run=true"] if dry_run else command


@dataclass
class Run:
    """One started run: its process, output lines and progress file."""

    id: str
    name: str
    command: list[str]
    run_dir: Path
    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    closed: threading.Event = field(default_factory=threading.Event)
    stopped: bool = False

    @property
    def returncode(self) -> int | None:
        """The exit status, ``None`` while it runs."""
        return self.process.poll()

    def progress(self) -> list[dict[str, Any]]:
        """The progress records written so far."""
        path = self.run_dir / "progress.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Runs:
    """Start, follow and stop training runs; at most one at a time.

    Args:
        config_dir: The folder of the saved experiments (given to ``--config-dir``).
        workdir: The working directory of the runs (``./data`` and ``./outputs`` are relative to it).
    """

    def __init__(self, config_dir: Path, workdir: Path) -> None:
        self.config_dir, self.workdir = Path(config_dir), Path(workdir)
        self.runs: dict[str, Run] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, name: str, dry_run: bool) -> Run:
        """Start ``python -m eisen_lightning train --config-dir DIR +experiment=NAME``.

        Raises:
            RuntimeError: If a run is still going.
        """
        with self._lock:
            busy = [r for r in self.runs.values() if r.returncode is None]
            if busy:
                raise RuntimeError(f"run {busy[0].id} ({busy[0].name}) is still going; stop it first")
            run_id = str(next(self._ids))
            stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
            run_dir = (self.workdir / "outputs" / "builder" / f"{name}-{stamp}-{run_id}").resolve()
            command = train_command(self.config_dir.resolve(), name, run_dir, dry_run)
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}
            process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            run = Run(run_id, name, command, run_dir, process)
            self.runs[run_id] = run
        threading.Thread(target=self._read, args=(run,), daemon=True).start()
        log.info("run %s: %s", run_id, " ".join(command))
        return run

    @staticmethod
    def _read(run: Run) -> None:
        for line in run.process.stdout:  # type: ignore[union-attr]
            run.lines.append(line.rstrip("\n"))
        run.process.wait()
        run.closed.set()

    def stop(self, run_id: str) -> bool:
        """Stop run ``run_id`` (its process group: the trainer and its loader workers)."""
        run = self.runs.get(run_id)
        if run is None or run.returncode is not None:
            return False
        run.stopped = True
        # Lightning ends the fit gracefully on SIGTERM (the last checkpoint is written), exit status 0
        os.killpg(run.process.pid, signal.SIGTERM)
        try:
            run.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(run.process.pid, signal.SIGKILL)
        return True

    def stop_all(self) -> None:
        """Stop every run still going (when the server stops)."""
        for run_id in list(self.runs):
            self.stop(run_id)

    def events(self, run_id: str, poll: float = 0.3) -> Iterator[dict[str, Any]]:
        """``log``, ``progress`` and a final ``end`` event of run ``run_id``, as they come."""
        run = self.runs[run_id]
        yield {
            "type": "start",
            "id": run.id,
            "name": run.name,
            "command": run.command,
            "run_dir": str(run.run_dir),
        }
        sent_lines = sent_progress = 0
        while True:
            done = run.closed.is_set()
            lines, progress = run.lines[sent_lines:], run.progress()[sent_progress:]
            sent_lines, sent_progress = sent_lines + len(lines), sent_progress + len(progress)
            for line in lines:
                yield {"type": "log", "line": line}
            for record in progress:
                yield {"type": "progress", **record}
            if done and not lines:
                yield {
                    "type": "end",
                    "returncode": run.returncode,
                    "stopped": run.stopped,
                    "metrics": _metrics(run.run_dir),
                }
                return
            time.sleep(poll)


def _metrics(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}
