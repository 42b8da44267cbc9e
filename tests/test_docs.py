"""The docs cannot drift from the code: every name they cite resolves.

Checked in docs/*.md:

- every dotted ``eisen_lightning.X.Y`` name is an importable module or an attribute of one;
- every ``conf/<group>/<option>`` path is a file (``.yaml`` may be left out) or a group folder;
- every group choice written as an override in code (``net=unet3d``, ``+experiment=decathlon``,
  ``callbacks=[default,onnx_export]``) names an existing option;
- docs/migration.md maps every public class and command of Eisen.
"""

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
DOCS = sorted((REPO / "docs").glob("*.md"))

DOTTED = re.compile(r"\beisen_lightning(?:\.[A-Za-z_]\w*)+")
CONF_PATH = re.compile(r"(?<![\w/.-])conf/([\w./-]*\w)")
CODE = re.compile(r"```[\w-]*\n(.*?)```|`([^`\n]+)`", re.DOTALL)
#: Strings that look like dotted names but are not Python objects (ONNX metadata keys).
NOT_PYTHON = {"eisen_lightning.parity_max_abs_diff", "eisen_lightning.pipeline"}
#: Citations that name, on purpose, something conf/ does not have: files the reader writes
#: (routing.md, builder.md), and a wrong option that shows the error message (reliability.md).
NOT_IN_CONF = {"net/torchvision_resnet18.yaml", "experiment=my_experiment", "net=nosuch", "experiment=nosuch"}


def groups() -> list[str]:
    """Every config group of conf/ (folders holding YAML files), nested ones as ``a/b``."""
    folders = {path.parent.relative_to(CONF).as_posix() for path in CONF.rglob("*.yaml")}
    return sorted(folder for folder in folders if folder != ".")


GROUP_CHOICE = re.compile(
    r"(?<![\w./~-])\+?(" + "|".join(re.escape(g) for g in groups()) + r")=(\[[^\]\s]*\]|[\w.-]+)"
)


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` is a module, or an attribute path below the longest importable module."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            node = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                node = getattr(node, name)
        except AttributeError:
            return False
        return True
    return False


def conf_exists(path: str) -> bool:
    if "..." in path or Path(path).stem.isupper() or path in NOT_IN_CONF:  # a placeholder, or on purpose
        return True
    target = CONF / path.rstrip(".")
    return target.is_dir() or target.is_file() or target.with_name(target.name + ".yaml").is_file()


def choices(value: str) -> list[str]:
    """Options named by an override's value: ``a`` or ``[a,b]``; placeholders are left out."""
    names = [name for name in value.strip("[]").split(",") if name]
    return [name for name in names if re.search(r"[a-z]", name) and not name.startswith(("$", "null"))]


def citations(pattern: re.Pattern, group: int = 0) -> list[tuple[str, str]]:
    return sorted({(doc.name, m.group(group)) for doc in DOCS for m in pattern.finditer(doc.read_text())})


def choice_citations() -> list[tuple[str, str, str]]:
    found = set()
    for doc in DOCS:
        for block, inline in CODE.findall(doc.read_text()):
            for match in GROUP_CHOICE.finditer(block or inline):
                found.update((doc.name, match.group(1), name) for name in choices(match.group(2)))
    return sorted(found)


def test_docs_cite_names():
    assert DOCS, "no docs/*.md found"
    assert any(doc.name == "migration.md" for doc in DOCS)
    assert len(citations(DOTTED)) > 20 and len(citations(CONF_PATH, 1)) > 20 and len(choice_citations()) > 20


def test_dotted_names_resolve():
    missing = [
        f"{doc}: {name}" for doc, name in citations(DOTTED) if name not in NOT_PYTHON and not resolves(name)
    ]
    assert not missing, "names cited in docs/ that do not resolve:\n" + "\n".join(missing)


def test_conf_paths_exist():
    missing = [f"{doc}: conf/{path}" for doc, path in citations(CONF_PATH, 1) if not conf_exists(path)]
    assert not missing, "conf/ paths cited in docs/ that do not exist:\n" + "\n".join(missing)


def test_group_choices_exist():
    missing = [
        f"{doc}: {group}={name}"
        for doc, group, name in choice_citations()
        if not (CONF / group / f"{name}.yaml").is_file() and f"{group}={name}" not in NOT_IN_CONF
    ]
    assert not missing, "config options cited in docs/ that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("eisen_lightning.data.DecathlonDataModule", True),
        ("eisen_lightning.io", True),
        ("eisen_lightning.data.NoSuchDataModule", False),
        ("eisen_lightning.nosuchmodule.X", False),
    ],
)
def test_resolves_tells_real_names_from_typos(name: str, expected: bool):
    assert resolves(name) is expected


def test_group_choice_pattern_reads_overrides():
    found = [(m.group(1), choices(m.group(2))) for m in GROUP_CHOICE.finditer(CHOICE_SAMPLE)]
    assert found == [
        ("net", ["unet3d"]),
        ("experiment", ["decathlon"]),
        ("callbacks", ["default", "onnx_export"]),
        ("experiment", []),
    ]


CHOICE_SAMPLE = (
    "net=unet3d +experiment=decathlon data.task=x callbacks=[default,onnx_export] +experiment=NAME"
)


#: Eisen's public surface (eisen-core 0.0.9, eisen-cli 0.0.7, eisen-deploy 0.0.2).
EISEN_SURFACE = (
    # datasets and utilities
    "MSDDataset PatchCamelyon CAMUS RSNAIntracranialHemorrhageDetection RSNABoneAgeChallenge MedSegCovid19 "
    "UCSDCovid19 PANDA KaggleCovid19 ABCsDataset ABCDataset EMIDEC Brats2020 JsonDataset ListDataset "
    "EisenDatasetSplitter EisenDatasetWrapper "
    # readers and writers
    "LoadITKFromFilename LoadNiftiFromFilename LoadDICOMFromFilename LoadPILImageFromFilename "
    "WriteNiftiToFile "
    # transforms
    "CreateConstantFlags RenameFields FilterFields ResampleNiftiVolumes ResampleITKVolumes NiftiToNumpy "
    "NumpyToNifti ITKToNumpy PilToNumpy CropCenteredSubVolumes MapValues ThresholdValues AddChannelDimension "
    "LabelMapToOneHot StackImagesChannelwise FixedMeanStdNormalization RepeatTensor GetShape GetContent "
    "EisenTransformWrapper "
    # models, losses, metrics
    "UNet UNet3D VNet HighRes2DNet HighRes3DNet ObeliskMIDL DiceLoss DiceMetric "
    # workflows, hooks, artifacts, wrappers, parallelism
    "GenericWorkflow Training TrainingAMP TrainingApexAMP Validation Testing PatienceHook LoggingHook "
    "TensorboardSummaryHook SaveTorchModel SaveONNXModel SaveTorchModelHook SaveONNXModelHook "
    "EisenModuleWrapper ModelParallel PipelineExecutionStreamer "
    # serving
    "EisenServingMAR EisenServingClient create_metadata"
).split()
EISEN_CONFIG = [
    "General",
    "Hyperparameters",
    "Models",
    "Datasets",
    "Readers",
    "Transforms",
    "Losses",
    "Metrics",
    "Optimizer",
    "Workflow",
    "Hooks",
    "Serving",
    "eisen train config.json",
]


def test_migration_guide_maps_all_of_eisen():
    text = (REPO / "docs" / "migration.md").read_text()
    missing = [
        name for name in [*EISEN_SURFACE, *EISEN_CONFIG] if f"`{name}" not in text and name not in text
    ]
    assert not missing, f"docs/migration.md does not mention: {missing}"
