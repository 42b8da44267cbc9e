"""Field routing: RoutedModule, DictDataset, ApplyToKeysd and the torchvision adapter."""

import sys
from functools import partial

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from monai.transforms import Compose
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from eisen_lightning.routing import ApplyToKeysd, DictDataset, RoutedModule, adapt_classifier, torchvision_net
from eisen_lightning.tasks import ClassificationTask


class TwoHeads(nn.Module):
    """Takes an image and a vector of clinical features; returns logits and an embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
        self.head = nn.Linear(4 + 2, 3)

    def forward(self, image: torch.Tensor, clinical: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.image(image)
        return self.head(torch.cat([embedding, clinical], 1)), embedding


def _mnist_like(n: int = 40) -> TensorDataset:
    """Stands in for torchvision's MNIST: items are (image, clinical, label) tuples."""
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(n, 1, 4, 4, generator=generator)
    clinical = torch.randn(n, 2, generator=generator)
    label = (image.mean((1, 2, 3)) > 0).long() + (clinical[:, 0] > 0.5).long()
    return TensorDataset(image, clinical, label)


# -- RoutedModule --------------------------------------------------------------------------------------
def test_routed_module_names_every_output_and_keeps_the_parameters():
    net = TwoHeads()
    routed = RoutedModule(net, input_keys=["image", "clinical"], output_keys=["logits", "embedding"])
    batch = {"image": torch.randn(5, 1, 4, 4), "clinical": torch.randn(5, 2), "label": torch.zeros(5)}
    out = routed(batch)
    assert list(out) == ["logits", "embedding"]
    assert out["logits"].shape == (5, 3) and out["embedding"].shape == (5, 4)
    logits, _ = net(batch["image"], batch["clinical"])
    assert torch.equal(out["logits"], logits), "inputs are passed positionally, in input_keys order"
    assert list(routed.parameters()) == list(net.parameters())
    out["logits"].sum().backward()
    assert net.head.weight.grad is not None
    single = RoutedModule(nn.Flatten(), "image", "flat")
    assert single({"image": torch.zeros(2, 1, 4, 4)})["flat"].shape == (2, 16)


def test_routed_module_errors_name_both_sides():
    batch = {"image": torch.randn(2, 1, 4, 4), "clinical": torch.randn(2, 2)}
    too_few_keys = RoutedModule(TwoHeads(), ["image", "clinical"], ["logits"])
    with pytest.raises(
        ValueError, match=r"TwoHeads returned 2 output\(s\) but output_keys names 1: \['logits'\]"
    ):
        too_few_keys(batch)  # Eisen dropped the embedding silently
    too_many_keys = RoutedModule(TwoHeads(), ["image", "clinical"], ["logits", "embedding", "extra"])
    with pytest.raises(ValueError, match="returned 2 output.*names 3"):
        too_many_keys(batch)
    with pytest.raises(
        KeyError, match=r"batch has no key\(s\) \['clinical'\] named in input_keys; it has \['image'\]"
    ):
        too_few_keys({"image": batch["image"]})

    class ReturnsDict(nn.Module):
        def forward(self, x):
            return {"y": x}

    with pytest.raises(
        TypeError, match="ReturnsDict returned a dict; RoutedModule names a tensor or a tuple"
    ):
        RoutedModule(ReturnsDict(), ["image"], ["y"])(batch)
    with pytest.raises(ValueError, match="input_keys must be a non-empty list of key names, got \\[\\]"):
        RoutedModule(nn.Identity(), [], ["y"])
    with pytest.raises(ValueError, match=r"output_keys must not repeat a key, got \['y', 'y'\]"):
        RoutedModule(TwoHeads(), ["image"], ["y", "y"])
    with pytest.raises(TypeError, match="module must be a torch.nn.Module, got builtin_function_or_method"):
        RoutedModule(torch.relu, ["image"], ["y"])


# -- DictDataset and ApplyToKeysd ----------------------------------------------------------------------
def test_dict_dataset_turns_tuples_into_dicts_and_applies_the_transform():
    source = _mnist_like()
    data = DictDataset(source, ["image", "clinical", "label"])
    assert len(data) == len(source)
    sample = data[7]
    assert sample.keys() == {"image", "clinical", "label"}
    assert torch.equal(sample["image"], source[7][0]) and sample["label"] == source[7][2]
    double = DictDataset(
        source, ["image", "clinical", "label"], transform=ApplyToKeysd(lambda x: 2 * x, ["image"])
    )
    assert torch.equal(double[7]["image"], 2 * source[7][0]) and torch.equal(
        double[7]["clinical"], source[7][1]
    )
    plain = DictDataset([np.zeros(3), np.ones(3)], ["image"])  # an item that is not a tuple is one field
    assert plain[1]["image"].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(
        ValueError, match=r"item 0 of TensorDataset has 3 field\(s\) but keys names 2: \['image', 'label'\]"
    ):
        DictDataset(source, ["image", "label"])[0]
    with pytest.raises(TypeError, match="transform must be callable or None, got int"):
        DictDataset(source, ["image", "clinical", "label"], transform=3)


def test_apply_to_keys_applies_any_callable_and_keeps_value_types():
    flip = ApplyToKeysd(np.fliplr, ["image", "label"])
    sample = {"image": np.arange(6).reshape(2, 3), "label": np.eye(2, 3), "id": "case1"}
    out = flip(sample)
    assert type(out["image"]) is np.ndarray, "no MetaTensor conversion: the callable's type is kept"
    assert out["image"].tolist() == [[2, 1, 0], [5, 4, 3]] and out["id"] == "case1"
    assert sample["image"].tolist() == [[0, 1, 2], [3, 4, 5]], "the input dict is left alone"
    chained = Compose([ApplyToKeysd(str.strip, "id"), ApplyToKeysd(str.upper, "id")])
    assert chained({"id": " case2 "})["id"] == "CASE2"
    with pytest.raises(KeyError):
        flip({"image": np.zeros((2, 2))})
    assert "label" not in ApplyToKeysd(np.fliplr, ["image", "label"], allow_missing_keys=True)(
        {"image": np.zeros(2)[None]}
    )
    with pytest.raises(TypeError, match="func must be callable"):
        ApplyToKeysd("fliplr", ["image"])


def test_routing_through_data_loader_batches_matches_the_task_routing(tmp_path):
    data = DictDataset(_mnist_like(), ["image", "clinical", "label"])
    loader = DataLoader(data, batch_size=8)
    net = TwoHeads()

    class FirstOutput(nn.Module):  # the task's loss takes the logits: keep the first output
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, image, clinical):
            return self.net(image, clinical)[0]

    task = ClassificationTask(
        net=FirstOutput(net),
        loss=nn.CrossEntropyLoss(),
        optimizer=partial(torch.optim.Adam, lr=1e-2),
        num_classes=3,
        input_keys=["image", "clinical"],
        target_key="label",
    )
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(task, train_dataloaders=loader, val_dataloaders=loader)
    assert (
        np.isfinite(float(trainer.callback_metrics["train/loss"])) and "val/loss" in trainer.callback_metrics
    )
    routed = RoutedModule(net, input_keys=task.input_keys, output_keys=["logits", "embedding"])
    batch = next(iter(loader))
    with torch.no_grad():
        assert torch.equal(routed(batch)["logits"], task(*task.inputs(batch)))


# -- torchvision --------------------------------------------------------------------------------------
def test_adapt_classifier_changes_input_channels_and_classes():
    rgb = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    net = nn.Sequential(rgb, nn.Linear(8, 1000))
    old = rgb[0].weight.detach().clone()
    adapt_classifier(net, in_channels=1, num_classes=4)
    assert net[0][0].in_channels == 1 and torch.allclose(net[0][0].weight, old.sum(1, keepdim=True))
    assert net[1].out_features == 4 and net(torch.zeros(2, 1, 8, 8)).shape == (2, 4)
    adapt_classifier(net, in_channels=5, num_classes=4)  # 1 -> 5: repeated and scaled by 1/5
    assert torch.allclose(net[0][0].weight, old.sum(1, keepdim=True).repeat(1, 5, 1, 1) / 5)
    image = torch.rand(1, 1, 8, 8)
    assert torch.allclose(net[0](image.repeat(1, 5, 1, 1)), rgb(image.repeat(1, 5, 1, 1)), atol=1e-6)
    with pytest.raises(ValueError, match="has no Conv2d input layer or no Linear output layer"):
        adapt_classifier(nn.Sequential(nn.Linear(2, 2)), 1, 2)
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got 0"):
        adapt_classifier(net, 1, 0)


def test_torchvision_net_without_torchvision_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision now raises ImportError
    with pytest.raises(ImportError, match=r"pip install eisen-lightning\[torchvision\]"):
        torchvision_net("resnet18", in_channels=1, num_classes=2)


def test_torchvision_net_adapts_a_resnet():
    pytest.importorskip(
        "torchvision", reason="torchvision is an optional extra (eisen-lightning[torchvision])"
    )
    net = torchvision_net("resnet18", in_channels=1, num_classes=5)
    assert net.conv1.in_channels == 1 and net.fc.out_features == 5
    assert net(torch.zeros(2, 1, 64, 64)).shape == (2, 5)
    assert torchvision_net("densenet121", in_channels=3, num_classes=2).classifier.out_features == 2
    with pytest.raises(ValueError, match="name must be a torchvision classification model, got 'resnet7'"):
        torchvision_net("resnet7")
