"""The per-node cost measurement and the contiguous partition that balances it."""

import itertools
import random

import pytest
import torch
from monai.networks.nets import UNet
from torch import fx, nn

from eisen_lightning.parallel import PipelineParallel
from eisen_lightning.parallel.balance import node_costs, operation_nodes, partition, stage_totals


def _brute_force_best(costs: list[float], stages: int) -> float:
    best = float("inf")
    for cuts in itertools.combinations(range(1, len(costs)), stages - 1):
        bounds = (0, *cuts, len(costs))
        best = min(best, max(sum(costs[a:b]) for a, b in itertools.pairwise(bounds)))
    return best


@pytest.mark.parametrize("seed", range(20))
def test_partition_minimises_the_most_expensive_stage(seed):
    rng = random.Random(seed)
    costs = [rng.choice([0.0, rng.random(), 10 * rng.random()]) for _ in range(rng.randint(3, 9))]
    stages = rng.randint(1, min(4, len(costs)))
    assignment = partition(costs, stages)
    assert assignment == sorted(assignment), "stages are contiguous and in graph order"
    assert set(assignment) == set(range(stages)), "no stage is empty"
    assert max(stage_totals(costs, assignment, stages)) == pytest.approx(_brute_force_best(costs, stages))


def test_partition_follows_the_cost_not_the_node_count():
    assert partition([8.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 2) == [0, 1, 1, 1, 1, 1, 1, 1, 1]
    with pytest.raises(ValueError, match="cannot split 2 operations into 3 non-empty stages"):
        partition([1.0, 1.0], 3)


class _Heavy(nn.Module):
    """A cheap convolution, then an expensive one, then eight cheap ones."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(1, 1, 1)
        self.heavy = nn.Conv2d(1, 256, 7, padding=3)
        self.reduce = nn.Conv2d(256, 1, 1)
        self.tail = nn.Sequential(*[nn.Conv2d(1, 1, 1) for _ in range(8)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.reduce(self.heavy(self.first(x))))


def test_memory_cost_counts_parameters_and_activations():
    traced = fx.symbolic_trace(_Heavy())
    costs = node_costs(traced, (torch.rand(1, 1, 8, 8),), mode="memory")
    names = [str(node.target) for node in operation_nodes(traced.graph)]
    heavy = costs[names.index("heavy")]
    expected = (256 * 49 + 256) * 4 + 256 * 64 * 4  # weights and bias, then the 256x8x8 output
    assert heavy == expected
    assert max(costs) == heavy


def test_the_measured_split_isolates_the_expensive_layer():
    # the second stage on the meta device: placement is visible per device without running it
    pipe = PipelineParallel(_Heavy(), devices=["cpu", "meta"], example_input=torch.rand(1, 1, 64, 64))
    # the heavy convolution outweighs the eight cheap ones after it, so the cut falls after it
    assert pipe.placement["first"] == pipe.placement["heavy"] == torch.device("cpu")
    assert {pipe.placement[f"tail.{i}"] for i in range(8)} == {torch.device("meta")}
    assert pipe.heavy.weight.device.type == "cpu" and pipe.tail[0].weight.device.type == "meta"
    assert pipe.stage_costs[0] > pipe.stage_costs[1] > 0


def test_measuring_leaves_the_net_untouched():
    torch.manual_seed(0)
    net = UNet(2, 1, 2, channels=(4, 8), strides=(2,), num_res_units=1, norm="batch", dropout=0.3)
    net(torch.rand(2, 1, 8, 8)).sum().backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(2, 1, 8, 8)
    rng = torch.get_rng_state()
    node_costs(fx.symbolic_trace(net), (x,), mode="time", repeats=1)
    assert torch.equal(torch.get_rng_state(), rng), "no dropout mask was drawn"
    assert all(m.training for m in net.modules())
    for name, param in net.named_parameters():
        assert torch.equal(param.grad, grads[name]), name
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_unknown_balance_mode_is_named():
    traced = fx.symbolic_trace(_Heavy())
    with pytest.raises(ValueError, match=r"balance must be one of \('time', 'memory'\), got 'flops'"):
        node_costs(traced, (torch.rand(1, 1, 8, 8),), mode="flops")
    with pytest.raises(ValueError, match="profile_repeats must be an integer >= 1, got 0"):
        node_costs(traced, (torch.rand(1, 1, 8, 8),), repeats=0)
