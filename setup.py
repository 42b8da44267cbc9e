"""Package build: the package lives in src/, the Hydra config tree in conf/ ships as eisen_lightning.conf."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages("src"), "eisen_lightning.conf"],
    package_dir={"": "src", "eisen_lightning.conf": "conf"},
    package_data={
        "eisen_lightning.conf": ["*.yaml", "**/*.yaml"],
        "eisen_lightning.builder": ["static/*"],
    },
)
