"""kdeep.models and kdeep.analysis use Keras only: they never import TensorFlow, and the models built under JAX
(on the CPU, TensorFlow blocked from import) have the same layers, parameters and outputs as under TensorFlow.
PyTorch is not tested (torch is not a test dependency)."""
import ast
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import kdeep
import kdeep.models as models

PACKAGE = os.path.dirname(kdeep.__file__)
KERAS_ONLY = sorted(os.path.join(PACKAGE, "models", f) for f in os.listdir(os.path.join(PACKAGE, "models"))
                    if f.endswith(".py")) + [os.path.join(PACKAGE, "analysis.py")]
REPO = os.path.dirname(PACKAGE)
TESTS = os.path.dirname(os.path.abspath(__file__))  # the JAX twin imports `initializers` from here
# `import tensorflow` fails as in an environment without it (sys.modules stays clean: Keras checks it there).
BLOCK_TENSORFLOW = textwrap.dedent("""
    import sys
    class NoTensorFlow:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "tensorflow":
                raise ImportError(f"{name} is blocked: this run has no TensorFlow")
    sys.meta_path.insert(0, NoTensorFlow())
""")

# Builds three families at small inputs, predicts, summarizes: the work any backend must be able to do.
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

# Under JAX: builds each case of the manifest with the weights TensorFlow saved, predicts the same images. The
# first case draws its initial weights with its own initializers (He normal, as every builder); the others skip
# the draw, which TensorFlow's weights replace anyway: JAX compiles one random-number program per new kernel
# shape (the eight builds took 54 s with their initializers and 4 s without, on the 2-core Xeon).
JAX_TWIN = """
import json, sys
import numpy as np
import keras
import kdeep.analysis as analysis
import kdeep.models as models
from initializers import zero_initialized

cases = json.load(open(sys.argv[1]))
for index, case in enumerate(cases):
    if index == 1:
        keras.layers.Layer.add_weight = zero_initialized(keras.layers.Layer.add_weight)
    model = models.build(case["name"], input_shape=tuple(case["shape"]), num_classes=7, width=case["width"],
                         weights=case["weights"])
    np.save(case["jax_outputs"], model.predict(np.load(case["images"]), verbose=0))
    case.update(layers=[layer.name for layer in model.layers], params=model.count_params(),
                trainable=analysis.summarize(model).trainable_params)
    keras.backend.clear_session()
json.dump(cases, open(sys.argv[1], "w"))
print("OK", keras.backend.backend(), "tensorflow" in sys.modules)
"""
# One model per block function and family: the book's two dropouts, VGG-BN, GoogLeNet-BN's Inception modules,
# the basic/bottleneck/pre-activation ResNet blocks, option A shortcuts, the plain blocks. Thin where they can be.
JAX_CASES = (("deepconvnet_book", 1.0), ("vgg11_bn", 0.25), ("googlenet_bn", 0.125), ("resnet18", 0.25),
             ("resnet50", 0.25), ("resnet50v2", 0.25), ("resnet20", 1.0), ("plain20", 1.0))


def run_python(code: str, backend: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=os.pathsep.join([REPO, TESTS]), TF_CPP_MIN_LOG_LEVEL="3",
               JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600)


def test_no_module_imports_tensorflow():
    for path in KERAS_ONLY:
        for node in ast.walk(ast.parse(open(path).read(), path)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] in ("tensorflow", "tf_keras") for n in names), f"{path} imports {names}"


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
    result = run_python(guard + WORKLOAD, "tensorflow")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK tensorflow" in result.stdout


def _require_jax() -> None:
    probe = subprocess.run([sys.executable, "-c", "import jax"], capture_output=True)
    assert probe.returncode == 0, "JAX is part of the test extra: pip install -e '.[test]'"


@pytest.mark.slow
def test_jax_builds_the_same_models_as_tensorflow(tmp_path):
    """Each case built under TensorFlow here and under JAX in a subprocess (TensorFlow blocked), with the weights
    TensorFlow saved: the same layer names and parameter counts (also through kdeep.analysis), and the same
    outputs on the same images."""
    _require_jax()
    assert keras.backend.backend() == "tensorflow"
    cases, expected = [], {}
    for name, width in JAX_CASES:
        shape = models.info(name).small_input_shape
        keras.utils.set_random_seed(0)
        model = models.build(name, input_shape=shape, num_classes=7, width=width)
        images = np.random.default_rng(0).random((4, *shape), dtype=np.float32)
        paths = {key: str(tmp_path / f"{name}.{key}") for key in ("weights.h5", "images.npy", "jax.npy")}
        model.save_weights(paths["weights.h5"])
        np.save(paths["images.npy"], images)
        expected[name] = (np.asarray(model(images, training=False)), [layer.name for layer in model.layers],
                          model.count_params(), int(sum(np.prod(w.shape) for w in model.trainable_weights)))
        cases.append(dict(name=name, shape=list(shape), width=width, weights=paths["weights.h5"],
                          images=paths["images.npy"], jax_outputs=paths["jax.npy"]))
        keras.backend.clear_session()
    manifest = tmp_path / "cases.json"
    manifest.write_text(json.dumps(cases))
    result = run_python(BLOCK_TENSORFLOW + JAX_TWIN, "jax", str(manifest))
    assert result.returncode == 0 and "OK jax False" in result.stdout, result.stderr[-3000:]
    for case in json.loads(manifest.read_text()):
        outputs, layer_names, params, trainable = expected[case["name"]]
        assert (case["layers"], case["params"], case["trainable"]) == (layer_names, params, trainable), case["name"]
        jax_outputs = np.load(case["jax_outputs"])
        np.testing.assert_allclose(jax_outputs, outputs, rtol=1e-4, atol=1e-5, err_msg=case["name"])
        np.testing.assert_allclose(jax_outputs.sum(axis=1), 1.0, rtol=1e-5)
