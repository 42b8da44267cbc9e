"""Worker of the DDP sync test, in its own module so spawned processes import only what they need."""

import os

import torch

from eisen_lightning.metrics import HausdorffDistance95, SurfaceDice


def run(rank: int, world_size: int, init_file: str, cases: list, out_dir: str) -> None:
    """Join a gloo group, update with this rank's cases (3 on rank 0, the rest on rank 1), save compute()."""
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        hd, nsd = HausdorffDistance95(3), SurfaceDice(3)
        for pred, target in cases[:3] if rank == 0 else cases[3:]:
            hd.update(pred, target)
            nsd.update(pred, target)
        torch.save({"hd": hd.compute(), "nsd": nsd.compute()}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        torch.distributed.destroy_process_group()
