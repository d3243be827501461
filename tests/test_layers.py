"""The package's import directions (docs/architecture.md): every module imports its own layer or lower.

``audio -> corpora / features -> models -> inference -> evaluation -> apps``: each ``emovox.<pkg>``
has a rank, and no import -- at the top of a module or inside a function -- may reach a higher
rank. A private name (``_helper``) is not imported from another module either: what two modules
share is public in one of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "emovox"

#: Layer rank of each top-level module or subpackage of emovox (the root package is its version).
LAYERS: dict[str, int] = {
    "": 0, "errors": 0, "labels": 0, "_numeric": 0, "_onnx": 0, "_threads": 0, "_lazy": 0, "_progress": 0,
    "audio": 1,
    "corpora": 2, "features": 2,
    "models": 3,
    "inference": 4,
    "evaluation": 5,
    "cli": 6, "api": 6, "ui": 6, "batch": 6,
    "testing": 7, "__main__": 7,
}


def _module_parts(path: Path) -> list[str]:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of every import in ``path``, relative imports made absolute."""
    parts = _module_parts(path)
    package = parts if path.name == "__init__.py" else parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [alias.name for alias in node.names]
            if node.module is None:  # from . import a, __version__: a module, or a name of the package
                found += [(node.lineno, f"{module}.{name}", []) if _is_module(f"{module}.{name}")
                          else (node.lineno, module, [name]) for name in names]
            else:
                found.append((node.lineno, module, names))
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_module(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _upward() -> list[str]:
    found = []
    for path in _modules():
        own = _layer(".".join(_module_parts(path)))
        for line, module, _ in _imports(path):
            if module.split(".")[0] != "emovox":
                continue
            target = _layer(module)
            if LAYERS.get(target, 99) > LAYERS.get(own, -1):
                found.append(f"{path.relative_to(SRC)}:{line} ({own}) imports {module} ({target or 'emovox'})")
    return found


def _private() -> list[str]:
    found = []
    for path in _modules():
        for line, module, names in _imports(path):
            if module.split(".")[0] != "emovox":
                continue
            for name in names:
                if name.startswith("_") and not name.startswith("__") and not _is_module(f"{module}.{name}"):
                    found.append(f"{path.relative_to(SRC)}:{line} imports {module}.{name}")
    return found


def test_every_package_has_a_layer():
    """A new subpackage or top-level module must be placed in the architecture first."""
    unplaced = sorted({_layer(".".join(_module_parts(p))) for p in _modules()} - set(LAYERS))
    assert not unplaced, f"add {unplaced} to LAYERS here and to docs/architecture.md"


def test_no_module_imports_a_higher_layer():
    upward = _upward()
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_no_private_name_is_imported_from_another_module():
    """``from .x import _helper`` couples two modules through a name one of them calls private."""
    private = _private()
    assert not private, "private names imported across modules:\n" + "\n".join(private)


def _write(root: Path, rel: str, text: str) -> None:
    path = root / "emovox" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("rel, source", [
    # the two upward imports this check replaced, both inside the one function that needed them
    ("features/whisper/frames.py", "def frozen_frames():\n    from ...models.augment import Augmenter\n"),
    ("models/onnx_export.py", "def export_model():\n    from ..inference.model import load_card\n"),
    ("evaluation/teachers.py", "from emovox.cli import main\n"),
])
def test_the_check_finds_upward_imports_anywhere(tmp_path, monkeypatch, rel, source):
    for pkg in ("features/whisper", "models", "inference", "evaluation", "cli"):
        _write(tmp_path, f"{pkg}/__init__.py", "")
    _write(tmp_path, "models/augment.py", "")
    _write(tmp_path, "inference/model.py", "")
    _write(tmp_path, rel, source)
    monkeypatch.setattr(f"{__name__}.SRC", tmp_path / "emovox")
    assert len(_upward()) == 1 and rel in _upward()[0]


def test_the_check_finds_private_names(tmp_path, monkeypatch):
    _write(tmp_path, "evaluation/__init__.py", "")
    _write(tmp_path, "evaluation/runner.py", "def _thread_limit(n): ...\n")
    _write(tmp_path, "evaluation/_helpers.py", "")
    _write(tmp_path, "evaluation/teachers.py", "from . import _helpers\nfrom .runner import _thread_limit\n")
    monkeypatch.setattr(f"{__name__}.SRC", tmp_path / "emovox")
    assert _private() == ["evaluation/teachers.py:2 imports emovox.evaluation.runner._thread_limit"]
