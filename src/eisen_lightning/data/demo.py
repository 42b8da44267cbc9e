"""DemoDataModule: the offline demo, a synthetic task generated on first use and read as Decathlon data."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eisen_lightning.data.decathlon import DecathlonDataModule
from eisen_lightning.data.slicing import check_patch_size
from eisen_lightning.data.synthetic import DEMO_SHAPE, write_demo_task
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)


class DemoDataModule(DecathlonDataModule):
    """The Decathlon DataModule over a synthetic task that it writes once into ``data_dir/task``.

    Everything after the generation (layout checks, splits, transforms, loaders) is the code path
    of real Decathlon data.

    Args:
        data_dir: Folder that receives the task folder.
        task: Name of the task folder.
        num_training: Labelled cases to generate.
        num_test: Unlabelled cases to generate.
        shape: Image size in voxels: three sizes, or two for a 2D task (use a 2D ``patch_size``,
            which is also the size of the slices of a 3D task with ``slice_axis`` set).
        **kwargs: Settings of :class:`DecathlonDataModule`.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     size = (16, 16, 8)
    ...     data = DemoDataModule(folder, num_training=4, num_test=1, shape=size, patch_size=size)
    ...     data.prepare_data()  # writes the synthetic task once, then checks its layout
    ...     cases = data.labelled_cases()
    >>> data.info
    DatasetInfo(in_channels=1, num_classes=3, label_names=['background', 'organ', 'lesion'], spatial_dims=3)
    >>> [case["case_id"] for case in cases]
    ['demo_0', 'demo_1', 'demo_2', 'demo_3']
    """

    def __init__(
        self,
        data_dir: str,
        task: str = "Task00_Demo",
        num_training: int = 32,
        num_test: int = 4,
        shape: Sequence[int] = DEMO_SHAPE,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("slice_axis") is not None and len(shape) != 3:
            raise ValueError(
                f"data.slice_axis={kwargs['slice_axis']} slices 3D volumes, but data.shape {list(shape)} "
                "is 2D; set data.slice_axis=null"
            )
        super().__init__(data_dir=data_dir, task=task, **kwargs)
        check_patch_size(self.patch_size, self.slice_axis, image_dims=len(shape))
        if num_training < 2 or num_test < 0:
            raise ValueError(
                f"data.num_training must be >= 2 and data.num_test >= 0, got {num_training}, {num_test}"
            )
        self.num_training, self.num_test, self.shape = num_training, num_test, list(shape)

    @classmethod
    def write_replica(
        cls,
        data_dir: str,
        task: str = "Task00_Demo",
        num_training: int = 32,
        num_test: int = 4,
        seed: int = 0,
        shape: Sequence[int] = DEMO_SHAPE,
        **_: Any,
    ) -> Path:
        """Write the demo task itself (it is synthetic already)."""
        return write_demo_task(Path(data_dir) / task, num_training, num_test, seed, list(shape))

    def fetch(self) -> None:
        """Generate the synthetic task (a few seconds, once)."""
        log.info("writing the synthetic demo task to %s", self.root)
        write_demo_task(self.root, self.num_training, self.num_test, self.seed, self.shape)
