"""The package's layout: public names that stay put, a low import graph, light motif I/O."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import genocnn

PACKAGE = Path(genocnn.__file__).parent
MAX_FLOORS = 8
MAX_LINES = 500


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(PACKAGE)]) if m.name != "__main__")


def _imports(name: str) -> set[str]:
    """genocnn modules that ``genocnn.<name>`` imports at module level."""
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 1 or mod.startswith("genocnn"):
                base = mod.removeprefix("genocnn").lstrip(".") if node.level == 0 else mod
                if base:
                    found.add(base.split(".")[0])
                else:  # from . import x
                    found.update(a.name for a in node.names if (PACKAGE / f"{a.name}.py").exists())
    return found & set(_modules())


def _floors() -> dict[str, int]:
    """Floor of each module: 1 + the highest floor it imports (1 for none); raises on a cycle."""
    graph = {m: _imports(m) for m in _modules()}
    floor: dict[str, int] = {}

    def visit(m: str, path: tuple[str, ...]) -> int:
        if m in path:
            raise AssertionError(f"import cycle: {' -> '.join((*path, m))}")
        if m not in floor:
            floor[m] = 1 + max((visit(d, (*path, m)) for d in graph[m]), default=0)
        return floor[m]

    for m in graph:
        visit(m, ())
    return floor


def test_import_graph_is_low_and_acyclic():
    floors = _floors()
    assert max(floors.values()) <= MAX_FLOORS, sorted(floors.items(), key=lambda kv: kv[1])


def test_no_module_over_500_lines():
    sizes = {m: len((PACKAGE / f"{m}.py").read_text().splitlines()) for m in _modules()}
    assert max(sizes.values()) <= MAX_LINES, {m: n for m, n in sizes.items() if n > MAX_LINES}


HEAVY = {"genocnn.training", "genocnn.data", "genocnn.genome", "genocnn.negatives", "genocnn.splits",
         "genocnn.checkpoint", "genocnn.models", "genocnn.prediction", "genocnn.scanning", "sklearn", "pyfaidx"}


def test_motif_files_naming_and_logos_import_no_training_or_data(tmp_path):
    """Reading/writing motif files, naming and logos stand on the ground floor only."""
    code = f"""
import sys
import numpy as np
from genocnn.pwm import Motif
from genocnn.motif_io import read_motifs, write_motifs
import genocnn.compare, genocnn.logos
m = Motif("m", np.array([[9, 0, 0], [0, 9, 0], [0, 0, 9], [1, 1, 1]]), sites=10)
write_motifs([m], {str(tmp_path / "m.meme")!r}, format="meme")
assert read_motifs({str(tmp_path / "m.meme")!r})[0].consensus == "ACG"
print(sorted(n for n in {sorted(HEAVY)!r} if n in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_public_names_stay_the_same_object_whatever_is_imported():
    """``genocnn.train`` etc. stay functions after every submodule has been imported."""
    before = {name: getattr(genocnn, name) for name in genocnn.__all__}
    for m in _modules():
        importlib.import_module(f"genocnn.{m}")
    for name, obj in before.items():
        assert getattr(genocnn, name) is obj, name
        if name != "__version__":
            assert callable(obj) or isinstance(obj, type), name


@pytest.mark.slow
@pytest.mark.parametrize("order", [("train", "predict", "scan"), ("scan", "predict", "train")])
def test_public_functions_called_twice_in_any_order(order, tmp_path):
    """A notebook re-running cells: each public function twice, in two orders, in a fresh process."""
    code = f"""
import genocnn
sim = genocnn.simulate({str(tmp_path / 'sim')!r}, tf="GATA1", n=60, length=60, seed=1)
cfg = genocnn.load_config(None).replace(training={{"epochs": 1}})
model = genocnn.train(sim.pos, sim.neg, out={str(tmp_path / 'run0')!r}, config=cfg, device="cpu", progress=False).model
calls = {{
    "train": lambda k: genocnn.train(sim.pos, sim.neg, out={str(tmp_path)!r} + f"/run{{k}}", config=cfg,
                                     device="cpu", progress=False),
    "predict": lambda k: genocnn.predict(model, sim.pos),
    "scan": lambda k: list(genocnn.scan(model, sim.pos, progress=False)),
}}
for k in (1, 2):
    for name in {order!r}:
        calls[name](k)
sim = genocnn.simulate({str(tmp_path / 'sim2')!r}, tf="GATA1", n=60, length=60, seed=2)
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
