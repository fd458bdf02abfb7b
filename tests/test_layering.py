"""The README's layering statement, checked: every module imports only from its own floor or the floors below."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The floors README.md names ("Layout"), bottom first; a unit is a kdeep module or package, or `quantization`.
FLOORS = (
    {"errors", "lazy", "shapes", "contract", "io", "quiet", "timing", "progress"},
    {"data", "models", "distribute"},
    {"analysis", "scoring", "report", "train"},
    {"quantization"},
    {"compare", "classify", "job"},
    {"cli", "__main__"},
)


def _unit(name: str) -> str:
    parts = name.split(".")
    return "quantization" if parts[0] == "quantization" else parts[1] if len(parts) > 1 else parts[0]


def _floor(unit: str) -> int:
    floor = next((i for i, units in enumerate(FLOORS) if unit in units), None)
    assert floor is not None, f"kdeep.{unit} is on no floor: add it to FLOORS here and to README's Layout"
    return floor


def test_imports_point_down_only():
    upward = []
    files = [*ROOT.joinpath("kdeep").rglob("*.py"), *ROOT.joinpath("quantization").rglob("*.py")]
    for path in files:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if module in ("kdeep.__init__", "kdeep"):
            continue  # the package's lazy __getattr__ names every subpackage
        here = _floor(_unit(module))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:  # `from kdeep import io` names kdeep.io
                names = [f"kdeep.{a.name}" for a in node.names] if node.module == "kdeep" else [node.module]
            for name in names:
                if name.split(".")[0] in ("kdeep", "quantization") and name not in ("kdeep", "kdeep.__version__"):
                    if _floor(_unit(name)) > here:
                        upward.append(f"{module} imports {name}")
    assert upward == []
    assert len(files) > 40  # the walk found the code
