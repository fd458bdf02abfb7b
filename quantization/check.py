"""The numeric check after every export: a LiteRT file must agree with its Keras model on real images, or it is a
failed variant (reported, not scored)."""
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kdeep.contract import probabilities
from kdeep.data.scaling import UNIT_RANGE
from kdeep.errors import QuantizationError
from quantization import litert

CHECK_IMAGES = 256  # real images per check (training images: the test set only scores)
# Top-1 agreement a file needs, on the images the Keras model decides (`MARGIN`). Quantization noise alone keeps every
# variant kdeep makes above 0.97 on a trained model (int2 dense layers included); a file LiteRT computes wrongly sits
# near chance (a 2-bit CONV_2D: 0.117 on the book's DeepConvNet).
MIN_AGREEMENT = 0.8
# The top-1 minus top-2 probability of the Keras model at which an image counts as decided: below it, quantization
# noise may flip the class of a faithful file (a DeepConvNet after one epoch on 300 images decides none of 256 images:
# its probabilities vary by 0.007 from image to image, its int4 file's by 0.0065 from the model's).
MARGIN = 0.2
MIN_DECIDED = 32  # decided images a verdict needs (over half of them when fewer are compared); with fewer, none


def needed(n: int) -> int:
    """Decided images a verdict on `n` compared images needs: `MIN_DECIDED`, or over half of them for fewer (a
    dataset of 20 images still gets a verdict when the model decides 11)."""
    return min(MIN_DECIDED, n // 2 + 1)


@dataclass(frozen=True)
class ExportCheck:
    """How one exported file's outputs compare with its Keras model's on the same real images.

    Attributes:
        file: the .tflite file's name.
        n: images compared.
        decided: of them, the images the Keras model decides (top-1 minus top-2 probability at least `MARGIN`).
        agreement: fraction of the decided images whose top-1 class is the Keras model's (of all `n` images when
            fewer than `needed(n)` are decided).
        mean_abs_prob_diff: mean |p_file - p_keras| over every class probability of the `n` images (logits go
            through a softmax).
        min_agreement: the agreement the file needs to pass.
        conclusive: the Keras model decides enough images for a verdict (`needed(n)`).
    """

    file: str
    n: int
    decided: int
    agreement: float
    mean_abs_prob_diff: float
    min_agreement: float
    conclusive: bool

    @property
    def passed(self) -> bool:
        """True when the file agrees with the Keras model on at least `min_agreement` of the decided images, or the
        check is not `conclusive` (the model decides too few images to tell a wrong file from a faithful one)."""
        return not self.conclusive or self.agreement >= self.min_agreement

    @property
    def message(self) -> str:
        """One line for the report and the CLI."""
        difference = f"mean |dp| {self.mean_abs_prob_diff:.4f}"
        if not self.conclusive:
            return (f"{self.file}: no verdict: the Keras model decides only {self.decided} of {self.n} real images by "
                    f"a top-1 margin of {MARGIN} (barely trained?), too few to tell a wrong file from its "
                    f"quantization noise; {difference}; scored")
        verdict = "passed" if self.passed else "FAILED: its outputs are not the model's; not scored"
        return (f"{self.file}: top-1 agreement with the Keras model {100 * self.agreement:.1f}% on the {self.decided} "
                f"of {self.n} real images it decides (needs {100 * self.min_agreement:.0f}%), {difference}; {verdict}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with passed."""
        return {**asdict(self), "passed": self.passed}


def check_export(tflite_path: str | Path, images: np.ndarray, reference: np.ndarray, *,
                 input_range: tuple[float, float] = UNIT_RANGE, output: str = "probabilities",
                 min_agreement: float | None = None) -> ExportCheck:
    """Runs an exported file on real images and compares its outputs with the Keras model's.

    Args:
        tflite_path: the exported .tflite.
        images: real uint8 images (float ones are taken as in [0, 1]); at most `CHECK_IMAGES` are used.
        reference: the Keras model's class probabilities on `images` (`kdeep.scoring.predict`), same order.
        input_range: the model contract's input range (how LiteRT's input is scaled).
        output: the model contract's output kind, "probabilities" or "logits" (the file's outputs are turned into
            probabilities the same way).
        min_agreement: the top-1 agreement the file needs (None: `MIN_AGREEMENT`).

    Returns:
        The `ExportCheck` (its `passed` says whether the file may be scored).

    Raises:
        QuantizationError: no images, or reference outputs that do not match them.
    """
    images, reference = np.asarray(images)[:CHECK_IMAGES], np.asarray(reference)[:CHECK_IMAGES]
    if len(images) == 0 or len(reference) != len(images):
        raise QuantizationError(f"the export check needs real images and the Keras model's outputs on them "
                                f"(got {len(images)} images, {len(reference)} outputs)")
    outputs = probabilities(litert.predict(tflite_path, images, input_range=input_range), output)
    top2 = np.sort(reference, axis=-1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] >= MARGIN
    same = outputs.argmax(axis=-1) == reference.argmax(axis=-1)
    conclusive = bool(decided.sum() >= needed(len(images)))
    agreement = float(np.mean(same[decided] if conclusive else same))
    return ExportCheck(Path(tflite_path).name, int(len(images)), int(decided.sum()), agreement,
                       float(np.abs(outputs - reference).mean()),
                       MIN_AGREEMENT if min_agreement is None else min_agreement, conclusive)
