"""Where each public data set comes from: URLs, published checksums, or how to get it by hand.

:data:`SOURCES` lists the data sets ``eisen download`` fetches itself; :data:`MANUAL_SOURCES` the
ones behind a login or a registration, with where to get them and the folder to put them in.
"""

from dataclasses import dataclass, field

#: Checksum value of a file whose source publishes none; its sha256 is shown but not verified.
NOT_PUBLISHED = "not published"

DECATHLON_URL = "https://msd-for-monai.s3-us-west-2.amazonaws.com/{task}.tar"
#: md5 of each Decathlon tar as MONAI's ``DecathlonDataset`` checks them (monai/apps/datasets.py).
DECATHLON_MD5 = {
    "Task01_BrainTumour": "240a19d752f0d9e9101544901065d872",
    "Task02_Heart": "06ee59366e1e5124267b774dbd654057",
    "Task03_Liver": "a90ec6c4aa7f6a3d087205e23d4e6397",
    "Task04_Hippocampus": "9d24dba78a72977dbd1d2e110310f31b",
    "Task05_Prostate": "35138f08b1efaef89d7424d2bcc928db",
    "Task06_Lung": "8afd997733c7fc0432f71255ba4e52dc",
    "Task07_Pancreas": "4f7080cfca169fa8066d17ce6eb061e4",
    "Task08_HepaticVessel": "641d79e80ec66453921d997fbf12a29c",
    "Task09_Spleen": "410d4a301da4e5b2f6f86ec3ddba524e",
    "Task10_Colon": "bad7a188931dc2f6acf72b08eb6202d0",
}

PCAM_URL = "https://zenodo.org/record/2546921/files/{name}"
#: md5 of each ``.h5.gz`` as published with PCam (github.com/basveeling/pcam, also in torchvision).
PCAM_MD5 = {
    "camelyonpatch_level_2_split_train_x.h5.gz": "1571f514728f59376b705fc836ff4b63",
    "camelyonpatch_level_2_split_train_y.h5.gz": "35c2d7259d906cfc8143347bb8e05be7",
    "camelyonpatch_level_2_split_valid_x.h5.gz": "d5b63470df7cfa627aeec8b9dc0c066e",
    "camelyonpatch_level_2_split_valid_y.h5.gz": "2b85f58b927af9964a4c15b8f7e8f179",
    "camelyonpatch_level_2_split_test_x.h5.gz": "d8c2d60d490dbd479f8199bdfa0cf6ec",
    "camelyonpatch_level_2_split_test_y.h5.gz": "60a7035772fbdb7f34eb86d4420cf66a",
}

UCSD_URL = "https://github.com/UCSD-AI4H/COVID-CT/raw/master/Images-processed/{name}"
#: The Google Drive files linked from medicalsegmentation.com/covid19.
MEDSEG_URL = "https://drive.google.com/uc?export=download&id={id}"
MEDSEG_DRIVE_IDS = {
    "tr_im.nii.gz": "1SJoMelgRqb0EuqlTuq6dxBWf2j9Kno8S",
    "tr_mask.nii.gz": "1MEqpbpwXjrLrH42DqDygWeSkDq0bi92f",
}

UNPACK_KINDS = ("tar", "zip", "gz", "file")


@dataclass(frozen=True)
class RemoteFile:
    """One file to download.

    Attributes:
        url: Where to get it.
        name: Its file name (also its name on a mirror: ``<mirror>/<name>``).
        unpack: ``tar`` or ``zip`` (extracted), ``gz`` (one file decompressed), ``file`` (kept as is).
        md5: Published md5, or :data:`NOT_PUBLISHED`.
        sha256: Published sha256, or :data:`NOT_PUBLISHED`.
    """

    url: str
    name: str
    unpack: str
    md5: str = NOT_PUBLISHED
    sha256: str = NOT_PUBLISHED

    @property
    def verified(self) -> bool:
        """Whether the source publishes a checksum for this file."""
        return self.md5 != NOT_PUBLISHED or self.sha256 != NOT_PUBLISHED


@dataclass(frozen=True)
class Source:
    """A data set that can be downloaded.

    Attributes:
        name: What ``eisen download`` takes.
        title: Human name.
        homepage: Where the data set is described (and its licence).
        folder: Folder under the data directory that receives it (``{task}`` filled in).
        files: What to download (``{task}`` filled in the URL and name).
        expected: Paths that must exist in the folder once unpacked.
        archive_root: Folder inside the unpacked files that becomes ``folder`` (``.``: all of them).
        tasks: The choices of the ``TASK`` argument, or empty when there is none.
        task_md5: Published md5 of each task's file, where the checksum depends on the task.
    """

    name: str
    title: str
    homepage: str
    folder: str
    files: tuple[RemoteFile, ...]
    expected: tuple[str, ...]
    archive_root: str = "."
    tasks: tuple[str, ...] = field(default_factory=tuple)
    task_md5: dict[str, str] = field(default_factory=dict)

    def files_for(self, task: str | None) -> tuple[RemoteFile, ...]:
        """The files of ``task`` (its name filled into URLs, names and checksums)."""
        return tuple(
            RemoteFile(
                f.url.format(task=task),
                f.name.format(task=task),
                f.unpack,
                md5=self.task_md5.get(task or "", f.md5),
                sha256=f.sha256,
            )
            for f in self.files
        )


@dataclass(frozen=True)
class ManualSource:
    """A data set behind a login or a registration: where to get it and where to put it.

    Attributes:
        name: What ``eisen download`` takes.
        title: Human name.
        url: The page to download it from.
        folder: Folder under the data directory that should hold it.
        how: What to do once logged in (``{root}``: the data directory).
    """

    name: str
    title: str
    url: str
    folder: str
    how: str


def _decathlon() -> Source:
    return Source(
        name="decathlon",
        title="Medical Segmentation Decathlon",
        homepage="http://medicaldecathlon.com",
        folder="{task}",
        files=(RemoteFile(DECATHLON_URL, "{task}.tar", "tar"),),
        expected=("dataset.json",),
        archive_root="{task}",
        tasks=tuple(DECATHLON_MD5),
        task_md5=DECATHLON_MD5,
    )


def _pcam() -> Source:
    files = tuple(RemoteFile(PCAM_URL.format(name=n), n, "gz", md5=m) for n, m in PCAM_MD5.items())
    return Source(
        name="pcam",
        title="PatchCamelyon",
        homepage="https://github.com/basveeling/pcam",
        folder="pcam",
        files=files,
        expected=tuple(n[: -len(".gz")] for n in PCAM_MD5),
    )


def _ucsd() -> Source:
    names = ("CT_COVID.zip", "CT_NonCOVID.zip")
    return Source(
        name="ucsd_covid",
        title="UCSD COVID-CT",
        homepage="https://github.com/UCSD-AI4H/COVID-CT",
        folder="ucsd_covid",
        files=tuple(RemoteFile(UCSD_URL.format(name=n), n, "zip") for n in names),
        expected=("CT_COVID", "CT_NonCOVID"),
    )


def _medseg() -> Source:
    files = tuple(RemoteFile(MEDSEG_URL.format(id=i), n, "file") for n, i in MEDSEG_DRIVE_IDS.items())
    return Source(
        name="medseg_covid",
        title="MedSeg COVID-19 CT segmentation",
        homepage="https://medicalsegmentation.com/covid19/",
        folder="medseg_covid",
        files=files,
        expected=tuple(MEDSEG_DRIVE_IDS),
    )


KAGGLE_HOW = "sign in to Kaggle, accept the rules, download ({cli}) and unzip it so that {expect} exists"
CHALLENGE_HOW = "register on the challenge site, download the data and extract it so that {expect} exists"


def _manual() -> tuple[ManualSource, ...]:
    kaggle = [
        ("rsna_ich", "RSNA Intracranial Hemorrhage Detection", "c/rsna-intracranial-hemorrhage-detection",
         "stage_2_train.csv"),
        ("rsna_boneage", "RSNA Bone Age", "datasets/kmader/rsna-bone-age", "boneage-training-dataset.csv"),
        ("panda", "Prostate cANcer graDe Assessment (PANDA)", "c/prostate-cancer-grade-assessment",
         "train.csv"),
        ("kaggle_covid", "COVID-19 CT scans (Kaggle)", "datasets/andrewmvd/covid19-ct-scans", "metadata.csv"),
    ]  # fmt: skip
    challenges = [
        ("camus", "CAMUS echocardiography", "https://www.creatis.insa-lyon.fr/Challenge/camus/",
         "training/patient0001/"),
        ("abcs", "ABCs: Anatomical Brain Barriers to Cancer Spread", "https://abcs.mgh.harvard.edu/",
         "<id>_ct.mha"),
        ("emidec", "EMIDEC myocardial infarction", "http://emidec.com/", "Case_XXXX/Images/"),
        ("brats2020", "BraTS 2020", "https://www.med.upenn.edu/cbica/brats2020/registration.html",
         "MICCAI_BraTS2020_TrainingData/"),
    ]  # fmt: skip
    out = []
    for name, title, slug, expect in kaggle:
        kind, ref = slug.split("/", 1)
        cli = (
            f"kaggle competitions download -c {ref}" if kind == "c" else f"kaggle datasets download -d {ref}"
        )
        how = KAGGLE_HOW.format(cli=cli, expect=f"{{root}}/{name}/{expect}")
        out.append(ManualSource(name, title, f"https://www.kaggle.com/{slug}/data", name, how))
    out += [
        ManualSource(n, t, u, n, CHALLENGE_HOW.format(expect=f"{{root}}/{n}/{e}"))
        for n, t, u, e in challenges
    ]
    return tuple(out)


SOURCES: dict[str, Source] = {s.name: s for s in (_decathlon(), _pcam(), _ucsd(), _medseg())}
MANUAL_SOURCES: dict[str, ManualSource] = {s.name: s for s in _manual()}


def listing() -> str:
    """The text of ``eisen download --list``: every data set, how it is fetched, its folder."""
    lines = ["downloaded by `eisen download NAME [TASK]` (into paths.data_dir/FOLDER):"]
    for s in SOURCES.values():
        folder = s.folder.replace("{task}", "TASK")
        lines.append(f"  {s.name:<14} {s.title} -> {folder}/  ({s.homepage})")
        if s.tasks:
            lines += [f"  {'':<14} TASK: {', '.join(s.tasks[i : i + 4])}" for i in range(0, len(s.tasks), 4)]
        if not all(f.verified for f in s.files_for(s.tasks[0] if s.tasks else None)):
            lines.append(f"  {'':<14} checksum not published: the sha256 received is shown, not verified")
    lines.append("behind a login or a registration (`eisen download NAME` says how to get them):")
    lines += [f"  {m.name:<14} {m.title} -> {m.folder}/  ({m.url})" for m in MANUAL_SOURCES.values()]
    return "\n".join(lines)
