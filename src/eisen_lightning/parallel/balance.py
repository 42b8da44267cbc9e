"""Measured cost of every operation of a traced net, and the contiguous split that balances it.

The cost of a node is measured on an example input, node by node: its recorded inputs are fed
to it again as fresh autograd leaves, and the forward and backward of that node alone are timed
(``balance="time"``), or its parameter and output-activation bytes are counted
(``balance="memory"``). The nodes, in graph order, are then cut into contiguous stages so that
the most expensive stage is as cheap as possible: the pipeline runs at the pace of its slowest
stage.
"""

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import fx
from torch.utils._pytree import tree_leaves, tree_map

BALANCE_MODES = ("time", "memory")


def operation_nodes(graph: fx.Graph) -> list[fx.Node]:
    """The nodes of ``graph`` that compute something (every node but the inputs and the output)."""
    return [node for node in graph.nodes if node.op not in ("placeholder", "output")]


def node_costs(
    traced: fx.GraphModule, example_inputs: Sequence[Any], mode: str = "time", repeats: int = 2
) -> list[float]:
    """The cost of every operation node of ``traced`` on ``example_inputs``, in graph order.

    The net runs in evaluation mode while it is measured, so batch-norm statistics, dropout
    random streams and gradients are left as they were.

    Args:
        traced: The traced net.
        example_inputs: Positional inputs of one forward pass, on the device to measure on.
        mode: ``time`` (seconds of forward and backward, the fastest of ``repeats`` runs after
            a warm-up) or ``memory`` (parameter and output bytes).
        repeats: Timed runs per node.

    Raises:
        ValueError: If ``mode`` or ``repeats`` is not allowed.
    """
    if mode not in BALANCE_MODES:
        raise ValueError(f"balance must be one of {BALANCE_MODES}, got {mode!r}")
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"profile_repeats must be an integer >= 1, got {repeats!r}")
    with _measuring(traced):
        values = _record_values(traced, example_inputs)
        nodes = operation_nodes(traced.graph)
        if mode == "memory":
            return [_memory_cost(traced, node, values) for node in nodes]
        runner = fx.Interpreter(traced)
        return [_time_cost(runner, node, values, repeats) for node in nodes]


def partition(costs: Sequence[float], num_stages: int) -> list[int]:
    """Stage index of every node: contiguous, non-empty blocks minimising the largest block cost.

    Dynamic programming over the prefix sums (exact; quadratic in the number of nodes).

    >>> partition([1.0, 1.0, 1.0, 3.0], 2)
    [0, 0, 0, 1]

    Raises:
        ValueError: If there are fewer nodes than stages.
    """
    n = len(costs)
    if num_stages < 1 or n < num_stages:
        raise ValueError(f"cannot split {n} operations into {num_stages} non-empty stages")
    prefix = [0.0]
    for cost in costs:
        prefix.append(prefix[-1] + max(float(cost), 0.0))
    # best[k][i]: the smallest largest-stage cost of the first i nodes cut into k stages.
    best = [[float("inf")] * (n + 1) for _ in range(num_stages + 1)]
    cut = [[0] * (n + 1) for _ in range(num_stages + 1)]
    best[0][0] = 0.0
    for k in range(1, num_stages + 1):
        for i in range(k, n - (num_stages - k) + 1):
            for j in range(k - 1, i):
                value = max(best[k - 1][j], prefix[i] - prefix[j])
                if value < best[k][i]:
                    best[k][i], cut[k][i] = value, j
    stages = [0] * n
    end = n
    for k in range(num_stages, 0, -1):
        start = cut[k][end]
        stages[start:end] = [k - 1] * (end - start)
        end = start
    return stages


def stage_totals(costs: Sequence[float], stages: Sequence[int], num_stages: int) -> list[float]:
    """The summed cost of every stage."""
    totals = [0.0] * num_stages
    for cost, stage in zip(costs, stages, strict=True):
        totals[stage] += float(cost)
    return totals


class _measuring:
    """Evaluation mode and untouched gradients while the net is measured."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module

    def __enter__(self) -> None:
        self.modes = {m: m.training for m in self.module.modules()}
        self.grads = {p: p.grad for p in self.module.parameters()}
        for param in self.grads:
            param.grad = None  # backward would otherwise add into the caller's gradient in place
        self.module.eval()

    def __exit__(self, *exc: object) -> None:
        for module, mode in self.modes.items():
            module.training = mode
        for param, grad in self.grads.items():
            param.grad = grad


class _Recorder(fx.Interpreter):
    """Runs the graph once and keeps a detached copy of every node's value."""

    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.values: dict[fx.Node, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        value = super().run_node(n)
        # copies: a later in-place operation (ReLU(inplace=True)) must not change the record
        self.values[n] = tree_map(lambda v: v.detach().clone() if isinstance(v, torch.Tensor) else v, value)
        return value


def _record_values(traced: fx.GraphModule, example_inputs: Sequence[Any]) -> dict[fx.Node, Any]:
    recorder = _Recorder(traced)
    with torch.no_grad():
        recorder.run(*example_inputs)
    return recorder.values


def _fresh_inputs(node: fx.Node, values: dict[fx.Node, Any]) -> tuple[tuple, dict]:
    """The node's arguments from the record, floating tensors as new (non-leaf) autograd inputs."""

    def fresh(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.detach().requires_grad_().clone()
        return value

    def lookup(arg: fx.Node) -> Any:
        return tree_map(fresh, values[arg])

    return fx.node.map_arg(node.args, lookup), fx.node.map_arg(node.kwargs, lookup)


def _time_cost(runner: fx.Interpreter, node: fx.Node, values: dict[fx.Node, Any], repeats: int) -> float:
    op: Callable[..., Any] = getattr(runner, node.op)
    timings = []
    for _ in range(repeats + 1):
        args, kwargs = _fresh_inputs(node, values)
        device = _device_of((args, kwargs))
        _synchronize(device)
        start = time.perf_counter()
        with torch.enable_grad():
            outputs = [t for t in tree_leaves(op(node.target, args, kwargs)) if _differentiable(t)]
            if outputs:
                torch.autograd.backward(outputs, [torch.ones_like(t) for t in outputs])
        _synchronize(device)
        timings.append(time.perf_counter() - start)
    return min(timings[1:])


def _memory_cost(traced: fx.GraphModule, node: fx.Node, values: dict[fx.Node, Any]) -> float:
    size = sum(t.numel() * t.element_size() for t in tree_leaves(values[node]) if isinstance(t, torch.Tensor))
    if node.op == "call_module":
        module = traced.get_submodule(str(node.target))
        size += sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))
    return float(size)


def _differentiable(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.requires_grad


def _device_of(tree: Any) -> torch.device:
    tensors = [t for t in tree_leaves(tree) if isinstance(t, torch.Tensor)]
    return tensors[0].device if tensors else torch.device("cpu")


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
