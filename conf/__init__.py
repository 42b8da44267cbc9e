"""The Hydra config tree of eisen-lightning, installed as the package ``eisen_lightning.conf``."""
