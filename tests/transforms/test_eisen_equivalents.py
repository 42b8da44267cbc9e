"""Every row of docs/transforms.md: the MONAI (or our) transform gives what Eisen's transform gave.

Eisen's result is computed here with numpy from its documented semantics, or with SimpleITK where
Eisen called SimpleITK. Where MONAI
differs on purpose, the test asserts the documented difference instead of hiding it.
"""

import logging
import operator
import re

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai import transforms as mt
from monai.data import MetaTensor
from PIL import Image

from conftest import REPO
from eisen_lightning.transforms import ClassesToOneHotd, RenameKeysd, SetConstantsd, Thresholdd

EPS = 1e-5  # eisen.EPS, added to the range by MapValues
RNG = np.random.default_rng(0)


def _np(value) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _ramp_volume(path, n: int = 32) -> np.ndarray:
    """A 1 mm NIfTI volume whose value is the x index (a linear ramp), written to ``path``."""
    data = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None], (n, 3, 3)).copy()
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    return data


# -- dictionary bookkeeping ---------------------------------------------------------------------------
def test_create_constant_flags():
    sample = {"image": np.zeros(2)}
    out = SetConstantsd(["my_field", "my_text"], [42.0, "hello"])(sample)
    expected = {**sample, "my_field": 42.0, "my_text": "hello"}  # data[f] = v for each pair
    assert out.keys() == expected.keys() and out["my_field"] == 42.0 and out["my_text"] == "hello"
    shared = SetConstantsd(["tags"], [[1, 2]])
    assert shared({})["tags"] is not shared({})["tags"], "each sample gets its own copy"
    with pytest.raises(ValueError, match=r"values has 1 entries for 2 keys \['a', 'b'\]"):
        SetConstantsd(["a", "b"], [1])


def test_rename_fields():
    sample = {"old_name1": 1, "old_name2": 2, "other": 3}
    expected = {"other": 3, "new_name1": 1, "new_name2": 2}  # pop each old key, store under the new one
    assert RenameKeysd(["old_name1", "old_name2"], ["new_name1", "new_name2"])(sample) == expected
    two_step = mt.Compose([mt.CopyItemsd(["old_name1"], names=["new_name1"]), mt.DeleteItemsd(["old_name1"])])
    assert two_step({"old_name1": 1}) == {"new_name1": 1}, "MONAI's equivalent, copying the value first"
    assert RenameKeysd(["a", "b"], ["b", "a"])({"a": 1, "b": 2}) == {"a": 2, "b": 1}
    with pytest.raises(ValueError, match=r"would overwrite the existing key\(s\) \['other'\]"):
        RenameKeysd(["old_name1"], ["other"])(sample)  # Eisen silently overwrote it


def test_filter_fields():
    sample = {"field1": 1, "field2": 2, "field3": 3}
    out = mt.SelectItemsd(["field1", "field2"])(sample)
    assert out == {"field1": 1, "field2": 2}  # a new dict with only the fields
    with pytest.raises(KeyError):  # a missing key raises, as in Eisen
        mt.SelectItemsd(["field1", "missing"])(sample)


# -- reading and resampling ------------------------------------------------------------------------------
@pytest.mark.parametrize(("resolution", "eisen_size", "monai_size"), [(0.5, 63, 63), (2.0, 17, 16)])
def test_resample_nifti_volumes(tmp_path, resolution, eisen_size, monai_size):
    _ramp_volume(tmp_path / "ramp.nii.gz")
    chain = mt.Compose(
        [
            mt.LoadImaged("image", reader="NibabelReader"),
            mt.EnsureChannelFirstd("image"),
            mt.Spacingd("image", pixdim=(resolution, 1.0, 1.0), mode="bilinear"),
        ]
    )
    out = chain({"image": str(tmp_path / "ramp.nii.gz")})["image"]
    # Eisen (nilearn, target_affine = diag(resolution)): the first voxel centre stays put and the
    # extent is rounded up, ceil((n - 1) * old / new) + 1; the verified 63 and 17.
    assert int(np.ceil(31 / resolution)) + 1 == eisen_size
    # MONAI rounds the extent to the nearest (round((n - 1) * old / new + 1)): 16 instead of 17 at
    # 2 mm; nilearn's 17th voxel lies at x = 32 mm, outside the 0..31 mm image.
    assert out.shape[1] == monai_size
    assert torch.allclose(out.pixdim[:1].float(), torch.tensor([resolution]))
    common = min(eisen_size, monai_size)
    positions = np.arange(common) * resolution  # x (mm) of each output voxel, the same in both
    eisen_values = np.interp(positions, np.arange(32), np.arange(32, dtype=np.float32))
    assert np.allclose(_np(out[0, :common, 1, 1]), eisen_values, atol=1e-4)


@pytest.mark.parametrize("resolution", [0.5, 2.0])
def test_resample_itk_volumes(resolution):
    data = np.broadcast_to(np.arange(32, dtype=np.float32)[:, None, None], (32, 3, 3)).copy()  # (x, y, z)
    itk_image = sitk.GetImageFromArray(data.transpose(2, 1, 0))  # SimpleITK arrays are (z, y, x)
    resampler = sitk.ResampleImageFilter()  # Eisen's ResampleITKVolumes, step by step
    new_size = np.asarray(
        np.asarray(itk_image.GetSize()) * np.asarray(itk_image.GetSpacing()) / [resolution, 1, 1]
    )
    resampler.SetReferenceImage(itk_image)
    resampler.SetOutputSpacing([resolution, 1.0, 1.0])
    resampler.SetSize(new_size.astype(int).tolist())
    resampler.SetInterpolator(sitk.sitkLinear)
    eisen = sitk.GetArrayFromImage(resampler.Execute(itk_image)).transpose(2, 1, 0)
    out = mt.Spacingd("image", pixdim=(resolution, 1.0, 1.0))(
        {"image": MetaTensor(data[None], affine=np.eye(4))}
    )
    out = out["image"][0]
    # Size: ITK int(n * old / new) (64 at 0.5 mm) against MONAI's round((n - 1) * old / new + 1) (63).
    assert eisen.shape[0] == int(32 / resolution) and out.shape[0] == round(31 / resolution + 1)
    common = min(eisen.shape[0], out.shape[0])  # both keep the first voxel centre (the ITK origin)
    assert np.allclose(_np(out[:common]), eisen[:common], atol=1e-4)


@pytest.mark.parametrize("multichannel", [False, True])
def test_nifti_to_numpy(tmp_path, multichannel):
    shape = (4, 5, 6, 2) if multichannel else (4, 5, 6)
    data = RNG.integers(0, 100, shape).astype(np.int16)
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 3.0, 1.0])), str(tmp_path / "x.nii.gz"))
    eisen = np.asanyarray(nib.load(tmp_path / "x.nii.gz").dataobj).astype(np.float32)  # (x, y, z[, c])
    if multichannel:
        eisen = np.moveaxis(eisen, -1, 0)  # the last axis to the front
    chain = [mt.LoadImaged("image", reader="NibabelReader", dtype=np.float32)]
    chain += [mt.EnsureChannelFirstd("image")] if multichannel else []
    out = mt.Compose(chain)({"image": str(tmp_path / "x.nii.gz")})["image"]
    assert out.dtype == torch.float32 and np.array_equal(_np(out), eisen)


def test_numpy_to_nifti(tmp_path):
    data = RNG.random((4, 5, 6)).astype(np.float64)
    # Eisen: nib.Nifti1Image(data.astype(float32), eye(ndim + 1)), then WriteNiftiToFile.
    save = mt.SaveImaged(
        "label",
        output_dir=str(tmp_path),
        output_postfix="label",
        separate_folder=False,
        output_dtype=np.float32,
        resample=False,
        print_log=False,
    )
    chain = mt.Compose([mt.EnsureChannelFirstd("label", channel_dim="no_channel"), save])
    chain({"label": data})
    (written,) = tmp_path.glob("*_label.nii.gz")
    image = nib.load(written)
    assert np.array_equal(image.affine, np.eye(4)) and image.get_data_dtype() == np.float32
    assert np.array_equal(np.asanyarray(image.dataobj), data.astype(np.float32))


@pytest.mark.parametrize("multichannel", [False, True])
def test_itk_to_numpy(tmp_path, multichannel):
    shape = (4, 5, 6, 3) if multichannel else (4, 5, 6)  # (x, y, z[, vector])
    data = RNG.integers(0, 100, shape).astype(np.float32)
    array = (
        data.transpose(2, 1, 0, 3) if multichannel else data.transpose(2, 1, 0)
    )  # SimpleITK's (z, y, x[, c])
    sitk.WriteImage(sitk.GetImageFromArray(array, isVector=multichannel), str(tmp_path / "x.nii.gz"))
    eisen = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "x.nii.gz"))).astype(
        np.float32
    )  # (z, y, x[, c])
    if multichannel:
        eisen = np.moveaxis(eisen, -1, 0)
    # MONAI's readers index (x, y, z); Eisen's ITK path gave (z, y, x): transpose the spatial axes.
    # SimpleITK writes a vector image as NIfTI (x, y, z, 1, c): the reader drops the singleton axis.
    load = mt.LoadImaged("image", reader="NibabelReader", dtype=np.float32, squeeze_non_spatial_dims=True)
    chain = [load]
    if multichannel:
        chain += [mt.EnsureChannelFirstd("image"), mt.Transposed("image", indices=[0, 3, 2, 1])]
    else:
        chain += [mt.Transposed("image", indices=[2, 1, 0])]
    out = mt.Compose(chain)({"image": str(tmp_path / "x.nii.gz")})["image"]
    assert np.array_equal(_np(out), eisen)


def test_itk_to_numpy_with_monai_itk_reader(tmp_path):
    pytest.importorskip("itk", reason="MONAI's ITKReader needs the itk package (not a dependency)")
    data = RNG.integers(0, 100, (4, 5, 6)).astype(np.float32)
    sitk.WriteImage(sitk.GetImageFromArray(data), str(tmp_path / "x.mha"))
    eisen = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "x.mha"))).astype(np.float32)
    load = mt.LoadImaged("image", reader="ITKReader", reverse_indexing=False, dtype=np.float32)
    assert np.array_equal(_np(load({"image": str(tmp_path / "x.mha")})["image"]), eisen)


@pytest.mark.parametrize("multichannel", [False, True])
def test_pil_to_numpy(tmp_path, multichannel):
    array = RNG.integers(0, 255, (3, 4, 3) if multichannel else (3, 4)).astype(np.uint8)
    Image.fromarray(array).save(tmp_path / "x.png")
    eisen = np.asarray(Image.open(tmp_path / "x.png")).astype(np.float32)  # (H, W[, C])
    if multichannel:
        eisen = np.moveaxis(eisen, -1, 0)  # C, H, W (verified in Eisen)
    chain = [mt.LoadImaged("image", reader="PILReader", reverse_indexing=False, dtype=np.float32)]
    chain += [mt.EnsureChannelFirstd("image")] if multichannel else []
    assert np.array_equal(_np(mt.Compose(chain)({"image": str(tmp_path / "x.png")})["image"]), eisen)
    in_memory = mt.Compose([mt.Lambdad("image", func=np.array), mt.CastToTyped("image", dtype=np.float32)])
    out = in_memory({"image": Image.open(tmp_path / "x.png")})["image"]
    assert np.array_equal(_np(out), np.asarray(Image.open(tmp_path / "x.png")).astype(np.float32))


# -- cropping and intensities ------------------------------------------------------------------------------
def _eisen_crop_or_pad(x: np.ndarray, size: list[int]) -> np.ndarray:
    """Centred zero-pad, then centred crop, of the last three axes.

    The reference gives Eisen's totals only; for odd differences this puts the extra voxel after.
    """
    spatial = x.shape[-3:]
    pads = [(0, 0)] * (x.ndim - 3) + [
        ((s - n) // 2, s - n - (s - n) // 2) if s > n else (0, 0) for n, s in zip(spatial, size, strict=True)
    ]
    x = np.pad(x, pads)
    starts = [n // 2 - s // 2 for n, s in zip(x.shape[-3:], size, strict=True)]
    return x[
        ..., starts[0] : starts[0] + size[0], starts[1] : starts[1] + size[1], starts[2] : starts[2] + size[2]
    ]


def test_crop_centered_sub_volumes():
    x = RNG.random((2, 30, 41, 50)).astype(np.float32)
    crop = mt.ResizeWithPadOrCropd("image", spatial_size=[32, 32, 32], mode="constant")
    out = crop({"image": x})["image"]
    assert out.shape == (2, 32, 32, 32)
    assert np.array_equal(_np(out), _eisen_crop_or_pad(x, [32, 32, 32]))
    # Eisen's verified bookkeeping, src [0, 0, -9, -18] (cropped) and dst [0, 2, 0, 0] (padded), is kept
    # by MONAI in the MetaTensor's applied operations (and undone by Invertd / crop.inverse).
    info = out.applied_operations[-1]["extra_info"]
    cropped = info["crop_info"]["extra_info"]["cropped"]
    padded = info["pad_info"]["extra_info"]["padded"]
    assert [0] + [-(cropped[2 * i] + cropped[2 * i + 1]) for i in range(3)] == [0, 0, -9, -18]
    assert [before + after for before, after in padded] == [0, 2, 0, 0]
    assert crop.inverse({"image": out})["image"].shape == x.shape
    odd = RNG.random((1, 29, 32, 35)).astype(np.float32)  # pad 3 and crop 3: the extra voxel goes after
    assert np.array_equal(_np(crop({"image": odd})["image"]), _eisen_crop_or_pad(odd, [32, 32, 32]))


@pytest.mark.parametrize("channelwise", [False, True])
def test_map_values(channelwise):
    x = RNG.normal(3.0, 2.0, (2, 5, 6)).astype(np.float32)
    lo, hi = -1.0, 4.0
    if channelwise:
        ranges = [(c - c.min()) / (c.max() - c.min() + EPS) for c in x]
        eisen = np.stack(ranges) * (hi - lo) + lo
    else:
        eisen = (x - x.min()) / (x.max() - x.min() + EPS) * (hi - lo) + lo
    out = mt.ScaleIntensityd("image", minv=lo, maxv=hi, channel_wise=channelwise)({"image": x.copy()})[
        "image"
    ]
    assert np.allclose(_np(out), eisen, atol=1e-4)  # MONAI has no EPS: the maximum maps to exactly hi
    constant = np.full((1, 3), 5.0, np.float32)
    eisen_constant = (constant - 5.0) / EPS * (hi - lo) + lo  # all lo
    monai_constant = _np(mt.ScaleIntensityd("image", minv=lo, maxv=hi)({"image": constant})["image"])
    assert np.allclose(eisen_constant, lo) and np.allclose(monai_constant, 5.0 * lo), "documented difference"


@pytest.mark.parametrize(
    ("direction", "compare"),
    [
        ("greater", np.greater),
        ("smaller", np.less),
        ("greater/equal", np.greater_equal),
        ("smaller/equal", np.less_equal),
    ],
)
def test_threshold_values(direction, compare):
    x = np.array([[0.0, 0.25, 0.5, 0.75, 1.0]], dtype=np.float64)
    eisen = compare(x, 0.5).astype(x.dtype)
    out = Thresholdd("label", 0.5, direction)({"label": x})["label"]
    assert out.dtype == x.dtype and np.array_equal(out, eisen)
    tensor_out = Thresholdd("label", 0.5, direction)({"label": MetaTensor(torch.from_numpy(x))})["label"]
    assert isinstance(tensor_out, MetaTensor) and np.array_equal(_np(tensor_out), eisen)
    if direction == "greater/equal":  # MONAI's own binarisation, as float32
        assert np.array_equal(_np(mt.AsDiscreted("label", threshold=0.5)({"label": x})["label"]), eisen)
    with pytest.raises(ValueError, match=r"direction must be one of \['greater', 'smaller'"):
        Thresholdd("label", 0.5, "bigger")


def test_add_channel_dimension():
    x = RNG.random((4, 5, 6)).astype(np.float32)
    out = mt.EnsureChannelFirstd("image", channel_dim="no_channel")({"image": x})["image"]
    assert np.array_equal(_np(out), x[np.newaxis])


def test_label_map_to_one_hot():
    classes = [1, 2, 25, 3]
    label = RNG.choice([0, 1, 2, 3, 7, 25], size=(1, 4, 5, 6)).astype(np.float32)
    squeezed = np.squeeze(label)
    eisen = np.stack([(squeezed == c).astype(np.float32) for c in classes])
    out = ClassesToOneHotd("label", classes)({"label": label})["label"]
    assert out.dtype == np.float32 and np.array_equal(out, eisen)
    tensor_out = ClassesToOneHotd("label", classes)({"label": MetaTensor(torch.from_numpy(label))})["label"]
    assert np.array_equal(_np(tensor_out), eisen)
    flat = label[:, :, :1]  # a singleton spatial axis: Eisen's squeeze removed it, we keep it
    assert ClassesToOneHotd("label", classes)({"label": flat})["label"].shape == (4, 4, 1, 6)
    assert np.stack([np.squeeze(flat) == c for c in classes]).shape == (4, 4, 6)


@pytest.mark.parametrize("create_new_dim", [True, False])
def test_stack_images_channelwise(create_new_dim):
    shape = (4, 5, 6) if create_new_dim else (1, 4, 5, 6)
    images = {f"modality{i}": RNG.random(shape).astype(np.float32) for i in range(3)}
    join = np.stack if create_new_dim else np.concatenate
    eisen = join(list(images.values()), axis=0)
    chain = [mt.EnsureChannelFirstd(list(images), channel_dim="no_channel")] if create_new_dim else []
    chain += [mt.ConcatItemsd(list(images), name="allmodalities", dim=0)]
    out = mt.Compose(chain)(dict(images))["allmodalities"]
    assert np.array_equal(_np(out), eisen)


def test_fixed_mean_std_normalization():
    x = RNG.random((1, 4, 5)).astype(np.float32)
    eisen = (x - 0.5) / 1.2
    out = mt.NormalizeIntensityd("image", subtrahend=0.5, divisor=1.2)({"image": x.copy()})["image"]
    assert np.allclose(_np(out), eisen, atol=1e-6)
    zero_std = mt.NormalizeIntensityd("image", subtrahend=0.5, divisor=0.0)({"image": x.copy()})["image"]
    assert np.allclose(_np(zero_std), x - 0.5), "documented: MONAI divides by 1 where Eisen asserted std != 0"


def test_repeat_tensor():
    grey = RNG.random((1, 4, 5)).astype(np.float32)
    out = mt.RepeatChanneld("image", repeats=3)({"image": grey})["image"]
    assert np.array_equal(_np(out), np.tile(grey, (3, 1, 1)))  # one channel: repeat == tile
    two = RNG.random((2, 4, 5)).astype(np.float32)
    reps = (2, 1, 3)
    tile = mt.Lambdad("image", func=operator.methodcaller("tile", reps))
    assert np.array_equal(_np(tile({"image": torch.from_numpy(two)})["image"]), np.tile(two, reps))
    interleaved = _np(mt.RepeatChanneld("image", repeats=2)({"image": two})["image"])
    assert np.array_equal(interleaved, np.repeat(two, 2, axis=0)), (
        "documented: channels c0 c0 c1 c1, not c0 c1 c0 c1"
    )


@pytest.mark.parametrize(
    ("eisen_name", "options"), [("GetShape", {"data_shape": True}), ("GetContent", {"data_value": True})]
)
def test_get_shape_and_get_content(caplog, eisen_name, options):
    x = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    flags = {"data_type": False, "data_shape": False, "value_range": False, "data_value": False, **options}
    stats = mt.DataStatsd("image", prefix="image", **flags)
    with caplog.at_level(logging.INFO, logger="DataStats"):
        out = stats({"image": x})
    assert out["image"] is x, "inspection only: the data passes unchanged"
    expected = f"Shape: {x.shape}" if eisen_name == "GetShape" else "Value: " + str(x).splitlines()[0][:10]
    assert expected in caplog.text


# -- the table and the tests stay in step -----------------------------------------------------------------
def test_every_eisen_transform_in_the_table_has_a_test():
    text = (REPO / "docs" / "transforms.md").read_text()
    table = text.split("| Eisen transform |", 1)[1].split("\n\n", 1)[0]  # Eisen's table only
    names = re.findall(r"^\| `(\w+)`", table, re.M)
    assert len(names) == 19 and len(set(names)) == 19, names
    tests = {name for name in globals() if name.startswith("test_")}
    for name in names:
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower().replace("i_t_k", "itk")
        assert f"test_{snake}" in tests or name in ("GetShape", "GetContent"), f"no test for {name} ({snake})"
