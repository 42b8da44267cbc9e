"""Pipeline (model) parallelism: split a net across devices and stream micro-batches through it.

``PipelineParallel(net, devices=["cuda:0", "cuda:1"], chunks=4, example_input=x)`` in code, or
``python train.py parallel=pipeline`` (``conf/parallel/pipeline.yaml``); see ``docs/parallel.md``.
"""

from eisen_lightning.parallel.config import example_input, parallel_net
from eisen_lightning.parallel.pipeline import PipelineParallel, trace

__all__ = ["PipelineParallel", "example_input", "parallel_net", "trace"]
