"""The package layout of imitation/: imports go one way through the layers, and the modules that promise it
import neither torch nor genesis."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "imitation"

# A package may import its own modules and those of any earlier layer.
LAYERS = [{"utils"}, {"config", "runs", "sim"}, {"env"}, {"analysis", "bundle"}, {"refine", "rl", "evaluation"},
          {"sim2sim"}, {"tools"}, {"cli"}]
# Imports within a layer, and the one lookup against the order: config checks reward terms in the env's registry.
ALLOWED = {("runs", "config"), ("config", "env")}


def _layer(part: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if part in layer)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> set[str]:
    """The imitation modules a file imports, at the top or inside functions."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "imitation"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "imitation":
                continue
            for alias in node.names:  # `from . import config`: the module config
                sub = f"{target}.{alias.name}"
                is_module = (ROOT / Path(*sub.split("."))).with_suffix(".py").is_file() or \
                    (ROOT / Path(*sub.split("."))).is_dir()
                out.add(sub if is_module else target)
    return out


def _top(module: str) -> str:
    """imitation.env.rewards -> env; imitation.cli -> cli."""
    return module.split(".")[1]


@pytest.mark.parametrize("path", sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py"),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_one_way_through_the_layers(path):
    source = _top(_module_name(path))
    for target in sorted(_imported(path)):
        dest = _top(target)
        if dest == source or (source, dest) in ALLOWED:
            continue
        assert _layer(dest) < _layer(source), f"{_module_name(path)} imports {target}: a later or sibling layer"


TORCH_FREE = ["imitation.cli", "imitation.config", "imitation.runs", "imitation.sim", "imitation.env", "imitation.bundle",
              "imitation.utils.quiet", "imitation.analysis", *sorted(
                  f"imitation.analysis.{p.stem}" for p in (PACKAGE / "analysis").glob("*.py") if p.stem != "__init__")]


def _heavy_after(code: str) -> list[str]:
    check = f"{code}; import sys; print([m for m in ('torch', 'genesis') if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=ROOT, check=True)
    return eval(proc.stdout.strip().splitlines()[-1])


def test_modules_that_need_neither_torch_nor_genesis_import_neither():
    assert _heavy_after("; ".join(f"import {m}" for m in TORCH_FREE)) == []


def test_imitation_retarget_imports_neither_torch_nor_genesis(tmp_path):
    out = tmp_path / "jump.h5"
    source = str(ROOT / "motions" / "jump.yaml")
    code = f"from imitation.cli import main; assert main(['retarget', {source!r}, '-o', {str(out)!r}]) == 0"
    assert _heavy_after(code) == []
    assert out.is_file()
