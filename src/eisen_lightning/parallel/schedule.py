"""Micro-batches streamed through the stages of a split net in GPipe order, in one process.

A split net is the top-level graph that ``torch.fx.passes.split_module`` returns: it calls one
submodule per stage and threads every value a later stage needs (the skip connections of a
UNet included) from the stage that made it. Each micro-batch gets its own ``fx.Interpreter``
over that graph; at clock tick ``t`` stage ``s`` runs micro-batch ``t - s``, so while stage
``s + 1`` works on micro-batch ``i - 1`` stage ``s`` works on micro-batch ``i``. CUDA launches
are asynchronous, so the stages on different GPUs compute at the same time; on the CPU the order
is the same and the work serial. Values cross devices with ``Tensor.to``, so autograd carries
the gradients back across them and the backward pass needs no schedule of its own.
"""

from collections.abc import Sequence
from typing import Any

import torch
from torch import fx
from torch.utils._pytree import tree_leaves, tree_map


def to_device(value: Any, device: torch.device) -> Any:
    """``value`` with every tensor in it (also in tuples, lists and dicts) moved to ``device``."""
    return tree_map(
        lambda v: v.to(device) if isinstance(v, torch.Tensor) and v.device != device else v, value
    )


def stage_of_target(target: str) -> int:
    """The stage index of a ``submod_<k>`` target of a split graph."""
    return int(target.rsplit("_", 1)[1])


class StagedGraph:
    """A split net whose stage ``k`` (submodule ``submod_k``) runs on ``devices[k]``.

    Args:
        split: The graph module returned by ``split_module``.
        devices: One device per stage.
    """

    def __init__(self, split: fx.GraphModule, devices: Sequence[torch.device]) -> None:
        self.split, self.devices = split, list(devices)
        nodes = list(split.graph.nodes)
        self.inputs = [n for n in nodes if n.op == "placeholder"]
        self.output = next(n for n in nodes if n.op == "output")
        self.stage_nodes: list[list[fx.Node]] = [[] for _ in self.devices]
        stage: dict[fx.Node, int] = {}
        for node in nodes:
            if node.op in ("placeholder", "output"):
                continue
            if node.op == "call_module":
                stage[node] = stage_of_target(str(node.target))
            else:  # the getitems that unpack a stage's outputs belong to that stage
                stage[node] = max((stage[a] for a in node.all_input_nodes if a in stage), default=0)
            self.stage_nodes[stage[node]].append(node)

    def device_of(self, target: str) -> torch.device:
        """The device of the stage submodule ``target``."""
        return self.devices[stage_of_target(target)]

    def run(self, inputs: tuple[Any, ...], chunks: int, output_device: torch.device) -> Any:
        """Run ``inputs`` split into up to ``chunks`` micro-batches; return the merged output.

        Args:
            inputs: The net's positional inputs; tensors are split along their first axis.
            chunks: Number of micro-batches (fewer when the batch is smaller).
            output_device: Where the output is returned.
        """
        from torch.distributed.pipelining.microbatch import merge_chunks, split_args_kwargs_into_chunks

        sizes = [t.shape[0] for t in tree_leaves(inputs) if isinstance(t, torch.Tensor) and t.dim() > 0]
        chunks = max(1, min([chunks, *sizes]))
        micro = [inputs] if chunks == 1 else split_args_kwargs_into_chunks(inputs, None, chunks)[0]
        runners = [_MicroBatchRun(self, args) for args in micro]
        num_stages = len(self.devices)
        for tick in range(len(runners) + num_stages - 1):
            for stage in reversed(range(num_stages)):
                index = tick - stage
                if 0 <= index < len(runners):
                    runners[index].run_stage(self.stage_nodes[stage])
        outputs = [runner.finish() for runner in runners]
        merged = outputs[0] if len(outputs) == 1 else merge_chunks(outputs, None)
        return to_device(merged, output_device)


class _MicroBatchRun(fx.Interpreter):
    """The split graph's state for one micro-batch, advanced one stage at a time."""

    def __init__(self, staged: StagedGraph, args: Sequence[Any]) -> None:
        super().__init__(staged.split)
        self.staged = staged
        self.args_iter = iter(args)
        for node in staged.inputs:
            self.env[node] = self.run_node(node)

    def call_module(self, target: Any, args: tuple, kwargs: dict) -> Any:
        device = self.staged.device_of(str(target))
        return super().call_module(target, to_device(args, device), to_device(kwargs, device))

    def run_stage(self, nodes: Sequence[fx.Node]) -> None:
        """Run the nodes of one stage, dropping every value no later node needs."""
        for node in nodes:
            self.env[node] = self.run_node(node)
            for dead in self.user_to_last_uses.get(node, []):
                del self.env[dead]

    def finish(self) -> Any:
        """The graph's output for this micro-batch."""
        return self.run_node(self.staged.output)
