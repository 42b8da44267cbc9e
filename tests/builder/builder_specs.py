"""Specs of the builder tests: the demo experiment as the page sends it."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def demo_spec(palette, name: str) -> dict:
    """The spec of the demo experiment as a user builds it: pipeline and default settings."""
    nodes = [{"group": g["name"], "option": o, "params": {}} for g in palette.groups for o in g["default"]]
    return {"name": name, "nodes": nodes, "metrics": [{"id": "dice", "params": {}}], "run": {}}


def node(spec: dict, group: str) -> dict:
    return next(n for n in spec["nodes"] if n["group"] == group)
