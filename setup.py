"""Install kdeep: the `kdeep` and `quantization` packages and the `kdeep` console script."""
from setuptools import find_packages, setup

setup(
    name="kdeep",
    version="0.1.0",
    description="Deeper convnets (DeepConvNet, VGG, GoogLeNet, ResNet) for Keras 3: training, "
    "distribution and TFLite/LiteRT quantization reports.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["kdeep", "kdeep.*", "quantization", "quantization.*"]),
    package_data={"kdeep.models": ["weights/*.npz", "weights/*.json"]},  # the pretrained presets (kdeep presets)
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<4",
        "tf-keras>=2.21,<2.22",
        "tensorflow-model-optimization>=0.8,<0.9",
        "ai-edge-litert>=2.0",
        "litert-quantizer==0.11.0",  # int4/int2 LiteRT variants and per-layer recipes (ai-edge-quantizer renamed); pins ai-edge-litert 2.3.0
        "tensorboard>=2.21,<2.22",  # `tensorboard --logdir runs/` on the event files every run writes
        "numpy>=1.26",
        "matplotlib>=3.8",
    ],
    # jax: tests/test_models_backend.py builds the models under KERAS_BACKEND=jax on the CPU
    extras_require={"test": ["pytest>=8", "pytest-xdist>=3.5", "pillow>=10", "jax>=0.4.30"]},
    entry_points={"console_scripts": ["kdeep=kdeep.cli:main"]},
)
