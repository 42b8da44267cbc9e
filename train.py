"""Train a model: ``python train.py [+experiment=NAME] [OVERRIDES]`` (the same as ``eisen train``).

Plain ``python train.py`` runs the offline demo.
"""

import sys

from eisen_lightning.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
