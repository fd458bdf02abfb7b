"""Training configuration: the TrainConfig dataclass, the named recipes (one table) and config.json round trips."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from kdeep.data.presets import AUGMENT_PRESETS
from kdeep.distribute.strategy import STRATEGIES
from kdeep.errors import ConfigError

OPTIMIZERS = ("adam", "sgd", "adamw")
SCHEDULES = ("constant", "step", "exponential", "cosine", "warmup_cosine", "plateau")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
SELECTIONS = ("final", "best")
AUGMENTS = (None, *AUGMENT_PRESETS)

# The named recipes, ONE table: each entry overrides TrainConfig's defaults (explicit flags override the recipe).
RECIPES: dict[str, dict[str, Any]] = {
    # The book's settings (ch. 8): Adam 1e-3, batch 100, 20 epochs, no augmentation, all 60,000 images.
    "book": dict(epochs=20, batch_size=100, optimizer="adam", lr=1e-3, schedule="constant", augment=None,
                 val_split=0),
    # Time to accuracy on a 2-core CPU: bigger batches (cheaper per image), a short warmup, then cosine to 0;
    # 6 epochs: about the goal's budget scaled to this CPU, 0.30x the book settings' time (BENCHMARKS.md).
    "fast": dict(epochs=6, batch_size=128, optimizer="adam", lr=3e-3, schedule="warmup_cosine",
                 warmup_epochs=0.3, augment=None, val_split=0),
    # The "digits" augmentation (small shifts/rotations/zoom) with cosine LR decay, trained longer.
    "augmented": dict(epochs=30, batch_size=100, optimizer="adam", lr=2e-3, schedule="cosine", augment="digits",
                      val_split=0),
    # The deeper families (ResNet, VGG-BN, GoogLeNet) in few epochs: SGD with Nesterov momentum 0.9 from 0.1, cosine
    # to 0, weight decay 5e-4, random crops and flips, 5,000 training images held out for validation.
    "sgd_cosine": dict(epochs=12, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True,
                       schedule="cosine", weight_decay=5e-4, augment="cifar", val_split=5000),
}


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved as the run directory's config.json.

    Attributes:
        model: registered model name (kdeep.models.list_models()), or the name of a model object passed in.
        width: channel multiplier of a named VGG, GoogLeNet or ResNet, in (0, 4] (1.0: the published network).
        dataset: dataset name (kdeep.data.list_datasets()), or "arrays" for arrays passed in.
        epochs: epochs to train.
        batch_size: GLOBAL batch size (split between replicas under a tf.distribute strategy).
        optimizer: "adam", "sgd" (with momentum, nesterov) or "adamw".
        lr: peak learning rate.
        momentum: SGD momentum.
        nesterov: SGD Nesterov momentum.
        schedule: "constant", "step", "exponential", "cosine", "warmup_cosine" or "plateau"
            (formulas in kdeep.train.schedules and docs/training.md).
        decay_rate: the factor gamma of "step", "exponential" and "plateau".
        step_epochs: epochs between two "step" decays.
        warmup_epochs: linear warmup length of "warmup_cosine" (may be fractional).
        min_lr: the floor of "cosine"/"warmup_cosine" and "plateau".
        patience: epochs without improvement before "plateau" decays.
        early_stopping: stop training after this many epochs without a better validation accuracy than the best
            so far (0 disables it; needs val_split > 0). Decided from the run's history, so it holds across a
            resume; the model kept is still chosen by `select`.
        weight_decay: decoupled weight decay (all optimizers); 0 disables it.
        label_smoothing: cross-entropy label smoothing in [0, 1).
        mixup: mixup (Zhang et al. 2018, kdeep.data.mixup): each training batch becomes lam * batch + (1 - lam) *
            the batch in another order, its labels likewise, lam ~ Beta(mixup, mixup) per batch (e.g. 0.2; 1.0
            draws lam uniformly); 0 disables it.
        ema: momentum of an exponential moving average of the weights (Polyak averaging), in [0, 1); the
            final model holds the averaged weights. 0 disables it.
        init: weights to start from (a warm start): a preset name (`resnet20.fashion_mnist`), a run directory or a
            `.keras` file of the same model, width and input shape; None starts from the builder's initializers.
            The run then trains them with this config's optimizer and schedule from step 0.
        teacher: distil from trained models (knowledge distillation, kdeep.train.distill): a preset name, run
            directory or .keras file, or several separated by commas (their softmax averaged); None trains on the
            labels alone. They must read the same images and predict the same classes as the model.
        distill_alpha: weight of the labels' cross-entropy in the distillation loss, in [0, 1] (the teacher's
            softened outputs take the rest).
        distill_temperature: the temperature T that softens the teacher's and the student's outputs (> 0).
        augment: augmentation preset for training batches (None, "none", "digits", "cifar", "erasing").
        mixed_precision: "float32", "mixed_float16" or "mixed_bfloat16" (outputs stay float32).
        jit_compile: XLA-compile the train step.
        seed: seeds weights, shuffling, augmentation and dropout.
        val_split: images held out from the END of the training set for validation; None = 5,000 for sets of
            50,000+ images, else a tenth; 0 trains on everything (no validation).
        limit: use only the first N training images (before the validation split).
        select: "final" (model.keras = last epoch) or "best" (best validation accuracy; needs val_split > 0).
        recipe: the recipe the config started from (informative).
        strategy: tf.distribute strategy: "auto", "one", "mirrored" or "multi-worker".
        out: the run directory (not compared on resume).
    """

    model: str = "deepconvnet"
    width: float = 1.0
    dataset: str = "mnist"
    epochs: int = 20
    batch_size: int = 100
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "constant"
    decay_rate: float = 0.1
    step_epochs: int = 10
    warmup_epochs: float = 1.0
    min_lr: float = 0.0
    patience: int = 2
    early_stopping: int = 0
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    mixup: float = 0.0
    ema: float = 0.0
    init: str | None = None
    teacher: str | None = None
    distill_alpha: float = 0.1
    distill_temperature: float = 10.0
    augment: str | None = None
    mixed_precision: str = "float32"
    jit_compile: bool = False
    seed: int = 0
    val_split: int | None = None
    limit: int | None = None
    select: str = "final"
    recipe: str | None = None
    strategy: str = "auto"
    out: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raises ConfigError naming the first bad field and its allowed values."""
        choices = dict(optimizer=OPTIMIZERS, schedule=SCHEDULES, mixed_precision=PRECISIONS, strategy=STRATEGIES,
                       select=SELECTIONS, augment=AUGMENTS)
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                shown = ", ".join(str(a) for a in allowed if a is not None)
                raise ConfigError(f"{name}={getattr(self, name)!r} is unknown: use one of {shown}")
        positive = dict(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, step_epochs=self.step_epochs)
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"{name}={value!r} must be > 0")
        if isinstance(self.width, bool) or not isinstance(self.width, (int, float)) or not 0 < self.width <= 4:
            raise ConfigError(f"width={self.width!r} must be a number in (0, 4] (1.0: the published network)")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit={self.limit!r} must be a positive number of training images")
        if self.val_split is not None and self.val_split < 0:
            raise ConfigError(f"val_split={self.val_split!r} must be >= 0 (0 trains on every image)")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label_smoothing={self.label_smoothing!r} must be in [0, 1)")
        if not self.mixup >= 0:
            raise ConfigError(f"mixup={self.mixup!r} must be >= 0 (the Beta parameter, e.g. 0.2; 0 disables mixup)")
        if not 0 <= self.distill_alpha <= 1 or not self.distill_temperature > 0:
            raise ConfigError(f"distill_alpha={self.distill_alpha!r} must be in [0, 1] and distill_temperature="
                              f"{self.distill_temperature!r} > 0 (e.g. 0.1 and 10)")
        if self.teacher is not None and not self.teachers:
            raise ConfigError("teacher='' names no model: give a preset name, run directory or .keras file")
        if self.teacher and self.label_smoothing:
            raise ConfigError("teacher and label_smoothing both soften the targets: use one of them")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"ema={self.ema!r} must be in [0, 1) (e.g. 0.999; 0 disables weight averaging)")
        if self.weight_decay < 0 or self.min_lr < 0 or self.warmup_epochs < 0 or not 0 < self.decay_rate <= 1:
            raise ConfigError("weight_decay, min_lr and warmup_epochs must be >= 0, decay_rate in (0, 1]")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum={self.momentum!r} must be in [0, 1) (e.g. 0.9)")
        if self.patience < 1:
            raise ConfigError(f"patience={self.patience!r} must be >= 1 epoch")
        if self.early_stopping < 0:
            raise ConfigError(f"early_stopping={self.early_stopping!r} must be >= 0 epochs (0 disables it)")
        if self.early_stopping and self.val_split == 0:
            raise ConfigError("early_stopping watches validation accuracy: set val_split > 0 (or early_stopping=0)")
        if self.select == "best" and self.val_split == 0:
            raise ConfigError("select='best' chooses by validation accuracy: set val_split > 0 (or select='final')")

    @property
    def teachers(self) -> list[str]:
        """The sources named in `teacher` (comma-separated), in order; empty when it names none."""
        return [source.strip() for source in (self.teacher or "").split(",") if source.strip()]

    @classmethod
    def from_recipe(cls, recipe: str | None = None, **overrides: Any) -> TrainConfig:
        """A config from a named recipe, with explicit overrides (None values are ignored).

        Args:
            recipe: a name in RECIPES, or None for the plain defaults (the book's settings, 5,000 validation images).
            **overrides: TrainConfig fields.

        Returns:
            The validated TrainConfig.
        """
        if recipe is not None and recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {recipe!r}: use one of {', '.join(RECIPES)}")
        values = dict(RECIPES.get(recipe, {}), recipe=recipe)
        values.update({key: value for key, value in overrides.items() if value is not None})
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown TrainConfig field(s) {', '.join(sorted(unknown))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Reads what `to_dict` wrote; ConfigError on unknown fields."""
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"config.json has unknown field(s) {', '.join(sorted(unknown))}: "
                              f"written by another kdeep version? Use a new --out")
        return cls(**values)

    def differences(self, other: TrainConfig) -> list[str]:
        """Fields (except `out`) whose values differ, as 'name: self -> other'."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{name}: {mine[name]!r} -> {theirs[name]!r}" for name in mine
                if name != "out" and mine[name] != theirs[name]]

    def command(self) -> str:
        """The `kdeep train` command line that makes this config: the recipe, then every field it changes."""
        base = TrainConfig.from_recipe(self.recipe).to_dict()
        words = ["kdeep", "train", "--model", self.model]
        words += ["--dataset", self.dataset] + (["--recipe", self.recipe] if self.recipe else [])
        for name, value in self.to_dict().items():
            if name in ("model", "dataset", "recipe", "out") or value == base[name]:
                continue
            flag = "--" + name.replace("_", "-")
            words += [flag] if value is True else [flag, str(value)]
        return " ".join(words + (["--out", str(self.out)] if self.out else []))

    def dumps(self) -> str:
        """config.json text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
