"""What each variant is for on the machine it ran on: its size, batch-1 speed and accuracy against float32, the one
it is best for, and why LiteRT's CPU runs it slower than its bits suggest where the runtime lacks fast kernels."""
from dataclasses import dataclass
from typing import Mapping

from quantization.plan import LayerPlan
from quantization.variants import Variant, layer_widths

NEAR_FLOAT_PP = 0.5  # a variant within this many points of float competes for "smallest" and "fastest"
SLOWER = 1.05  # latency ratio above which a variant counts as slower than float32


@dataclass(frozen=True)
class Measured:
    """One scored variant's figures (the same machine and run for all).

    Attributes:
        size_bytes: the file's size.
        latency_us: batch-1 median latency, 1 thread.
        accuracy: test accuracy.
        n: test images scored (variants scored on fewer images are not ranked).
    """

    size_bytes: int
    latency_us: float
    accuracy: float
    n: int


def slow_reason(variant: Variant, layers: LayerPlan) -> str:
    """Why LiteRT's CPU runs a variant slower than its widths suggest ("" when nothing is known).

    XNNPACK, LiteRT's default CPU delegate, runs int8 weights on every weighted op and int4 weights only on dense
    layers with float inputs (`plan.FAST_DYNAMIC_BITS`); the rest falls back to LiteRT's builtin kernels.
    """
    if variant.activation_bits == 16:
        return "int16 activations run on LiteRT's reference kernels (XNNPACK has no int16 kernels)"
    if variant.backend != "aiedge":
        return ""
    widths = layer_widths(variant, layers)
    if variant.activation_bits == 8:
        slow = [e for e in layers if widths[e.key] not in (None, 8)]
        why = "XNNPACK runs no int4 weights with int8 activations, so LiteRT's builtin kernels run"
    else:
        slow = [e for e in layers if widths[e.key] is not None and widths[e.key] not in e.fast_bits]
        why = "XNNPACK has no int4 convolution kernel, so LiteRT's builtin kernels run"
    reasons = []
    if slow:
        ops, bits = sorted({e.op for e in slow}), sorted({widths[e.key] for e in slow})
        reasons.append(f"{why} its {len(slow)} {'/'.join(ops)} layer(s) with {'/'.join(map(str, bits))}-bit weights")
    if not variant.dynamic and variant.activation_bits == 32 and any(b is not None for b in widths.values()):
        reasons.append("weight-only: the weights are dequantized to float before each op, on every invoke")
    return "; ".join(reasons)


def _best(measured: Mapping[str, Measured], float_name: str) -> dict[str, str]:
    """{variant: what it is best for} among the quantized variants scored on the full set."""
    full = max(m.n for m in measured.values())
    reference = measured[float_name].accuracy
    ranked = {name: m for name, m in measured.items() if name != float_name and m.n == full}
    near = {name: m for name, m in ranked.items() if 100 * (reference - m.accuracy) <= NEAR_FLOAT_PP}
    best: dict[str, str] = {}
    if near:
        best[min(near, key=lambda n: near[n].size_bytes)] = "smallest"
        fastest = min(near, key=lambda n: near[n].latency_us)
        best[fastest] = f"{best[fastest]} and fastest" if fastest in best else "fastest"
    if ranked:
        accurate = max(ranked, key=lambda n: ranked[n].accuracy)
        best.setdefault(accurate, "most accurate")
    return best


def purposes(measured: Mapping[str, Measured], reasons: Mapping[str, str],
             float_name: str = "float32") -> dict[str, str]:
    """One line per variant: its size, speed and accuracy against float32 on this machine, what it is best for (the
    smallest and the fastest within 0.5 points of float32, the most accurate), and why it is slow when it is.

    Args:
        measured: {variant: Measured}, float32 included.
        reasons: {variant: `slow_reason`} (missing: none known).
        float_name: the reference variant.

    Returns:
        {variant: text}; {} without the reference.
    """
    if float_name not in measured:
        return {}
    base = measured[float_name]
    best = _best(measured, float_name)
    lines = {}
    for name, m in measured.items():
        speed = m.latency_us / base.latency_us
        text = (f"{m.size_bytes / base.size_bytes:.2f}x the float32 file, {speed:.2f}x its batch-1 latency, "
                f"{100 * (m.accuracy - base.accuracy):+.2f} pt")
        if name == float_name:
            text = "the reference: " + text
        elif name in best:
            text += f"; {best[name]} within {NEAR_FLOAT_PP} pt of float32" if best[name] != "most accurate" \
                else "; the most accurate quantized file"
        if speed > SLOWER and reasons.get(name):
            text += f"; slower than float32 here: {reasons[name]}"
        lines[name] = text
    return lines
