"""Start-up: `eisen --help` and `python train.py --cfg job` against the imports they avoid or need.

Each command runs in a fresh interpreter, alternating with the reference commands in one run, and
the table gives the median wall time of each. Targets: `eisen --help` under 1 s (the CLI imports
nothing heavy before it knows the verb), `python train.py --cfg job` (compose and print the config,
no training) under 5 s. For scale, the time to import torch, and the whole stack (torch, Lightning,
MONAI), is printed beside them.

    python benchmarks/startup.py                    # 5 repeats
    python benchmarks/startup.py --repeats 1        # smoke
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "eisen --help": [sys.executable, "-m", "eisen_lightning.cli", "--help"],
    "python train.py --cfg job": [sys.executable, str(ROOT / "train.py"), "--cfg", "job"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "import torch, lightning, monai": [
        sys.executable,
        "-c",
        "import torch, pytorch_lightning, monai.transforms, monai.networks.nets",
    ],
}
TARGETS = {"eisen --help": 1.0, "python train.py --cfg job": 5.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"# startup: {args.repeats} repeats, python {platform.python_version()}, {os.cpu_count()} CPUs")
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
            times[name].append(time.perf_counter() - start)
            if done.returncode != 0:
                print(f"{name} failed:\n{done.stderr[-2000:]}")
                return 1
    for name, values in times.items():
        median = statistics.median(values)
        target = TARGETS.get(name)
        verdict = (
            "" if target is None else f"  target < {target:.0f} s: {'met' if median < target else 'MISSED'}"
        )
        print(f"{name:32} median {median:6.2f} s  min {min(values):6.2f} s{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
