"""Strip outputs, execution counts and widget state from notebooks, so that they are committed clean.

Usage: ``python notebooks/strip_outputs.py [--check] [NOTEBOOK ...]`` (default: every notebook in
this folder); ``make notebooks-clean`` runs it. With ``--check`` nothing is written: the notebooks
that still hold outputs are listed and the exit status is 1.
"""

import argparse
import json
import sys
from pathlib import Path


def strip(notebook: dict) -> bool:
    """Remove outputs, execution counts and widget state in place; return whether anything changed."""
    changed = notebook.get("metadata", {}).pop("widgets", None) is not None
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        changed |= bool(cell.get("outputs")) or cell.get("execution_count") is not None
        cell["outputs"], cell["execution_count"] = [], None
    return changed


def main(argv: list[str] | None = None) -> int:
    """Strip (or with ``--check``, list) the notebooks given, or every notebook of this folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--check", action="store_true", help="list notebooks with outputs, write nothing")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(Path(__file__).parent.glob("*.ipynb"))
    dirty = []
    for path in paths:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if strip(notebook):
            dirty.append(path)
            if not args.check:
                text = json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
                path.write_text(text, encoding="utf-8")
    if args.check:
        print("\n".join(f"{path}: has outputs; run `make notebooks-clean`" for path in dirty))
        return 1 if dirty else 0
    print(f"{len(dirty)} notebook(s) stripped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
