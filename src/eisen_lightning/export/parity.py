"""Parity of an exported model: onnxruntime against torch on the same real input."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

#: Largest absolute difference of the logits accepted between onnxruntime and torch.
DEFAULT_TOLERANCE = 1e-4
INSTALL_HINT = "pip install eisen-lightning[onnx]"


class ParityError(RuntimeError):
    """An exported model whose outputs differ from torch's beyond the tolerance."""


def import_onnx() -> tuple[Any, Any]:
    """Return the ``onnx`` and ``onnxruntime`` modules, or fail with the install hint."""
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise ImportError(f"ONNX export and inference need onnx and onnxruntime: {INSTALL_HINT}") from err
    return onnx, onnxruntime


def ort_session(model: str | bytes, threads: int = 0, providers: list[str] | None = None) -> Any:
    """An onnxruntime session: full graph optimisation, sequential execution, no spinning threads.

    Args:
        model: Path of an ``.onnx`` file or its bytes.
        threads: Intra-op threads; 0 lets onnxruntime choose (one per physical core).
        providers: Execution providers; default the CPU provider.
    """
    _, ort = import_onnx()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(threads)
    # Idle worker threads sleep instead of spinning: on shared cores spinning takes time from the
    # other processes (and from torch), for no gain (benchmarks/results/onnx_inference.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=providers or ["CPUExecutionProvider"])


def max_abs_diff(session: Any, net: nn.Module, sample: torch.Tensor) -> float:
    """Largest absolute difference between onnxruntime's and torch's outputs on ``sample``.

    Args:
        session: An onnxruntime session of the exported ``net``.
        net: The torch module, in eval mode.
        sample: A batch on the net's device and dtype.

    Raises:
        ParityError: If the shapes differ or an output is not finite.
    """
    with torch.no_grad(), _full_precision(sample.device):
        expected = net(sample).float().cpu().numpy()
    name = session.get_inputs()[0].name
    (got,) = session.run(None, {name: sample.detach().cpu().numpy()})
    if got.shape != expected.shape:
        raise ParityError(
            f"onnxruntime output shape {got.shape} differs from torch's {expected.shape} "
            f"for an input of shape {tuple(sample.shape)}"
        )
    if not np.isfinite(got).all():
        raise ParityError(f"onnxruntime output holds NaN or infinite values for input {tuple(sample.shape)}")
    return float(np.abs(got.astype(np.float32) - expected).max())


@contextmanager
def _full_precision(device: torch.device) -> Iterator[None]:
    """Turn TF32 off on CUDA for the reference output: it alone differs from float32 by ~1e-3."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def check_parity(
    session: Any, net: nn.Module, samples: dict[str, torch.Tensor], tolerance: float = DEFAULT_TOLERANCE
) -> dict[str, float]:
    """Compare onnxruntime with torch on every sample and fail loudly beyond ``tolerance``.

    Args:
        session: An onnxruntime session of the exported ``net``.
        net: The torch module, in eval mode.
        samples: ``description -> input batch``.
        tolerance: Largest accepted absolute difference.

    Returns:
        ``description -> max abs diff``.

    Raises:
        ParityError: If any difference exceeds ``tolerance``.

    >>> import io
    >>> net = nn.Conv3d(1, 2, kernel_size=3, padding=1).eval()
    >>> sample = torch.rand(1, 1, 8, 8, 8)
    >>> onnx_file = io.BytesIO()
    >>> torch.onnx.export(net, (sample,), onnx_file, dynamo=False, opset_version=20)
    >>> diffs = check_parity(ort_session(onnx_file.getvalue(), threads=1), net, {"random patch": sample})
    >>> list(diffs), diffs["random patch"] <= DEFAULT_TOLERANCE
    (['random patch'], True)
    """
    diffs = {name: max_abs_diff(session, net, sample) for name, sample in samples.items()}
    bad = {name: diff for name, diff in diffs.items() if not diff <= tolerance}
    if bad:
        raise ParityError(
            f"the ONNX export does not reproduce torch: max abs diff {bad} exceeds {tolerance:g}; "
            "the net may hold data-dependent control flow or state that tracing freezes. "
            "Nothing was written."
        )
    return diffs
