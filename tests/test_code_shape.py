"""The house rules that a parser can check: no function over 80 lines (kdeep/, quantization/, apps/), and a CLI that
only parses and prints."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 80
# What a CLI module may import from outside kdeep: argument parsing and printing need nothing heavier.
CLI_STDLIB = {"argparse", "importlib", "json", "os", "signal", "sys", "time", "pathlib", "typing", "__future__"}


def _functions(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_no_function_is_over_80_lines():
    files = [path for folder in ("kdeep", "quantization", "apps") for path in ROOT.joinpath(folder).rglob("*.py")]
    long = [f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path in files for node in _functions(path) if node.end_lineno - node.lineno + 1 > MAX_LINES]
    assert long == []
    assert len(files) > 40 and any(path.parent.name == "apps" for path in files)  # the walk found the code


def _cli_modules():
    return sorted(ROOT.joinpath("kdeep", "cli").glob("*.py"))


def test_cli_modules_import_no_numerical_library_and_raise_no_library_error():
    """A CLI module that imports numpy, Keras or TensorFlow, or raises a KdeepError itself, is doing a job or a check
    that belongs in the library (argparse's own ArgumentTypeError is parsing, and allowed)."""
    found = []
    for path in _cli_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                root = name.split(".")[0]
                if root not in ("kdeep", "quantization") and root not in CLI_STDLIB:
                    found.append(f"{path.name} imports {name}")
                if name == "kdeep.errors" and path.name != "__init__.py":  # __init__ turns them into one line
                    found.append(f"{path.name} imports kdeep.errors (raises a library error itself)")
            if isinstance(node, ast.Raise) and node.exc is not None:
                raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                name = raised.attr if isinstance(raised, ast.Attribute) else getattr(raised, "id", "")
                if name != "ArgumentTypeError":
                    found.append(f"{path.name}:{node.lineno} raises {name}")
    assert found == []
    assert len(_cli_modules()) >= 8


def test_cli_handlers_are_short():
    """Handlers (every function but `register` and the flag builders) call the library and print: a screenful."""
    long = [f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)" for path in _cli_modules()
            for node in _functions(path) if not node.name.startswith(("register", "_add", "_export_flags",
                                                                        "_predict_flags"))
            and node.end_lineno - node.lineno + 1 > 25]
    assert long == []
