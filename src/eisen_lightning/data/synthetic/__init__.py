"""Synthetic data on disk, in the exact layouts the public data sets are distributed in.

One module per layout writes a tiny faithful replica (same folder and file names, formats, CSV
columns and quirks) for tests, docs and dry runs; each DataModule's ``write_replica`` classmethod
calls its module. The offline demo and the Decathlon replicas live in :mod:`.decathlon`.
"""

from eisen_lightning.data.synthetic.decathlon import (
    DECATHLON_META,
    DEMO_LABELS,
    DEMO_NAME,
    DEMO_SHAPE,
    demo_affine,
    demo_case,
    write_decathlon_replica,
    write_decathlon_task,
    write_demo_task,
)

__all__ = [
    "DECATHLON_META",
    "DEMO_LABELS",
    "DEMO_NAME",
    "DEMO_SHAPE",
    "demo_affine",
    "demo_case",
    "write_decathlon_replica",
    "write_decathlon_task",
    "write_demo_task",
]
