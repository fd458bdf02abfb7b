"""kdeep.models and kdeep.analysis use Keras only: they never import TensorFlow and run on other backends."""
import ast
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

import kdeep

PACKAGE = pathlib.Path(kdeep.__file__).parent
KERAS_ONLY = sorted((PACKAGE / "models").glob("*.py")) + [PACKAGE / "analysis.py"]
REPO = PACKAGE.parent

# Builds three families at small inputs, predicts, summarizes: the work a non-TF backend must be able to do.
WORKLOAD = """
import numpy as np
import keras
import kdeep.models as models
import kdeep.analysis as analysis
for name, shape in (("deepconvnet", (28, 28, 1)), ("resnet20", (32, 32, 3)), ("googlenet", (16, 16, 3))):
    model = models.build(name, input_shape=shape, num_classes=5)
    probs = keras.ops.convert_to_numpy(model(np.random.rand(2, *shape).astype("float32"), training=False))
    assert probs.shape == (2, 5) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5), name
assert analysis.summarize("deepconvnet").trainable_params == 123552
print("OK", keras.backend.backend())
"""


def run_python(python: str, code: str, backend: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, timeout=600)


def test_no_module_imports_tensorflow():
    for path in KERAS_ONLY:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] in ("tensorflow", "tf_keras") for n in names), f"{path.name} imports {names}"


@pytest.mark.slow
def test_builders_never_ask_for_tensorflow_at_run_time():
    """With Keras on TensorFlow, any `import tensorflow` issued from kdeep.models/kdeep.analysis raises."""
    guard = textwrap.dedent("""
        import builtins
        real_import = builtins.__import__
        def guarded(name, globals=None, *args, **kwargs):
            caller = (globals or {}).get("__name__", "")
            if name.split(".")[0] == "tensorflow" and (caller.startswith("kdeep.models") or caller == "kdeep.analysis"):
                raise ImportError(f"{caller} imported {name}")
            return real_import(name, globals, *args, **kwargs)
        builtins.__import__ = guarded
    """)
    result = run_python(sys.executable, guard + WORKLOAD, "tensorflow")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK tensorflow" in result.stdout


def non_tf_python() -> tuple[str, str]:
    """An interpreter with a non-TensorFlow Keras backend: $KDEEP_NO_TF_PYTHON (e.g. a keras+jax venv) or this one."""
    python = os.environ.get("KDEEP_NO_TF_PYTHON", sys.executable)
    for backend, module in (("jax", "jax"), ("torch", "torch")):
        probe = subprocess.run([python, "-c", f"import {module}"], capture_output=True)
        if probe.returncode == 0:
            return python, backend
    pytest.skip(f"{python} has neither jax nor torch; set KDEEP_NO_TF_PYTHON to a keras+jax interpreter")


def test_models_build_and_predict_without_tensorflow_installed():
    python, backend = non_tf_python()
    blocked = 'import sys\nsys.modules["tensorflow"] = None  # `import tensorflow` now fails\n'
    result = run_python(python, blocked + WORKLOAD, backend)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"OK {backend}" in result.stdout
