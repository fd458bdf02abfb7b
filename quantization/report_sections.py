"""The quantization report's figures and sections: accuracy against bits, the sweep, sensitivity and
mixed-precision sections (a table and a plot each), on the report layer's `Section`."""
from kdeep.report import FIGURE_WIDTH, Section, Table
from kdeep.report.figures import png, pyplot
from quantization import check
from quantization.results import PipelineResults
from quantization.sweep import ACTIVATION_BITS, INPUT

FLOAT_X = 10  # where float weights sit on the sweep plot's weight-bits axis
MARKERS = "*sPDv^<>hpX"
PLOTS = ("sweep.png", "sensitivity.png", "pareto.png")


def _bits(bits: int | None) -> str:
    return "float" if bits is None else str(bits)


def _images(n: int, total: int | None) -> str:
    """'all 10000 test images' or 'the first 2000 of 10000 test images (a subset)'."""
    if total is None or n >= total:
        return f"all {n} test images"
    return f"the first {n} of {total} test images (a subset)"


def accuracy_plot(results: PipelineResults, table: list[dict]) -> bytes:
    """Accuracy against weight bits (a marker per variant, every one named in the legend; a variant scored on fewer
    images than the others is hollow and says how many), file size and batch-1 latency."""
    names = [r["variant"] for r in table]
    figure, (acc, size, speed) = pyplot().subplots(1, 3, figsize=(FIGURE_WIDTH, 6.0))
    for i, (r, v) in enumerate(zip(table, results.variants.values())):
        subset = v.n < results.n_test
        acc.scatter(v.weight_bits, r["accuracy_pct"], s=50, marker=MARKERS[i % len(MARKERS)], color=f"C{i % 10}",
                    facecolors="none" if subset else f"C{i % 10}",
                    label=f"{r['variant']} ({r['bits']}){f', {v.n} of {results.n_test} images' if subset else ''}")
    acc.axhline(100 * results.float_accuracy, color="grey", linestyle="--", linewidth=1, label="Keras float")
    handles, labels = acc.get_legend_handles_labels()  # below the three plots: a dozen names never cover a point
    figure.legend(handles, labels, loc="lower center", ncol=4, fontsize=7, frameon=False)
    acc.set_xscale("log", base=2)
    acc.set(xticks=[2, 4, 8, 16, 32], xticklabels=["2", "4", "8", "16", "32"], xlim=(1.5, 45), xlabel="weight bits",
            ylabel="test accuracy %", title="accuracy vs bit width (LiteRT)")
    size.bar(names, [r["size_kib"] for r in table], color="tab:orange")
    size.set(ylabel="KiB", title="file size")
    speed.bar(names, [r["latency_1t_median_us"] for r in table], color="tab:green")
    speed.set(ylabel="µs (median, 1 thread, log scale)", title="batch-1 latency", yscale="log")
    for axis in (size, speed):  # upright names, so a dozen variants never overprint each other
        axis.tick_params(axis="x", labelrotation=90, labelsize=8)
    figure.suptitle(f"{results.model} on {results.dataset}")
    return png(figure, layout=(0, 0.2, 1, 1))


def _litert_points(axis, results: PipelineResults) -> None:
    """Each deployable LiteRT variant as its own marker (named in the legend, no overprinted labels)."""
    for i, (name, v) in enumerate(results.variants.items()):
        x = FLOAT_X if v.weight_bits > 8 else v.weight_bits
        subset = " (subset)" if v.n < results.n_test else ""
        axis.scatter(x, 100 * v.accuracy, marker=MARKERS[i % len(MARKERS)], s=90, color="black", zorder=3,
                     facecolors="none" if i % 2 else "black",
                     label=f"LiteRT {name} ({v.weight_bits}/{v.activation_bits}){subset}")


def _sweep_plot(results: PipelineResults) -> bytes:
    """Simulated accuracy against weight bits, one line per activation width, LiteRT points on the same axes;
    left the full range, right zoomed on the top."""
    sweep = results.sweep
    figure, axes = pyplot().subplots(1, 2, figsize=(FIGURE_WIDTH, 4.8))
    floor = 100 * 0.9 * sweep.float_accuracy
    for axis in axes:
        for a_bits in ACTIVATION_BITS:
            line = [r for r in sweep.rows if r["activation_bits"] == a_bits]
            if line:
                axis.plot([FLOAT_X if r["weight_bits"] is None else r["weight_bits"] for r in line],
                          [100 * r["accuracy"] for r in line], marker="o", markersize=4,
                          label=f"simulated, activations {_bits(a_bits)}")
        axis.axhline(floor, color="grey", linestyle=":", linewidth=1, label="90 % of float (simulated)")
        _litert_points(axis, results)
        axis.set(xticks=[*range(1, 9), FLOAT_X], xticklabels=[*map(str, range(1, 9)), "float"],
                 xlim=(0.5, FLOAT_X + 0.7),
                 xlabel="weight bits (every layer)", ylabel="test accuracy %")
    axes[0].set(ylim=(0, 101), title=f"simulated sweep ({_images(sweep.n, results.n_test)})")
    top = 100 * sweep.float_accuracy
    axes[1].set(ylim=(top - 3, top + 1), title="zoom: within 3 points of float")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    return png(figure, layout=(0, 0.2, 1, 1))


def _sweep_sections(results: PipelineResults) -> list[Section]:
    sweep = results.sweep
    widths = sorted({r["weight_bits"] for r in sweep.rows}, key=lambda b: FLOAT_X if b is None else b)
    table = {(r["weight_bits"], r["activation_bits"]): r["accuracy"] for r in sweep.rows}
    rows = [[f"activations {_bits(a)}"] + [f"{100 * table[(w, a)]:.2f}" if (w, a) in table else "–" for w in widths]
            for a in ACTIVATION_BITS if any(key[1] == a for key in table)]
    collapse = sweep.collapse_bits
    falls = (f"{collapse}-bit weights and below (float activations)." if collapse
             else "no swept weight width (float activations).")
    notes = [f"Simulated in Keras (per-channel symmetric weights, per-tensor asymmetric activations calibrated on "
             f"training images), scored on {_images(sweep.n, results.n_test)}; float Keras accuracy on "
             f"them {100 * sweep.float_accuracy:.2f} %. Black markers are the deployable LiteRT files "
             "(full test set unless marked subset).",
             f"Accuracy falls below 90 % of float's at {falls}"]
    check = [[name, f"{c['weight_bits']}/{_bits(c['activation_bits'])}", f"{100 * c['simulated']:.2f}",
              f"{100 * c['litert']:.2f}", f"{100 * (c['simulated'] - c['litert']):+.2f}"]
             for name, c in sweep.check.items()]
    headers = ("test accuracy % (simulated)", *(f"w{_bits(w)}" for w in widths))
    sections = [Section("Bit-width sweep (simulated)", notes, table=Table(headers, _cells(rows)), image="sweep.png",
                        png=_sweep_plot(results))]
    if check:
        sections.append(Section("Simulator against LiteRT (same images)",
                                [f"Simulated and LiteRT accuracy on {_images(sweep.n, results.n_test)}."],
                                table=Table(("variant", "bits w/a", "simulated %", "LiteRT %", "difference pp"),
                                            _cells(check))))
    return sections


def _cells(rows: list[list[str]]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(row) for row in rows)


def _sensitivity_plot(results: PipelineResults) -> bytes:
    """Each layer's simulated accuracy drop, beside its SNR in the int4 LiteRT file when measured."""
    rows = results.sweep.sensitivity
    with_snr = any(r.get("snr_db") is not None for r in rows)
    figure, axes = pyplot().subplots(1, 2 if with_snr else 1, figsize=(FIGURE_WIDTH, 1.2 + 0.32 * len(rows)),
                                squeeze=False)
    names = [r["layer"] for r in rows][::-1]
    axes[0][0].barh(names, [r["drop_pp"] for r in rows][::-1], color="tab:red")
    axes[0][0].set(xlabel="test accuracy drop, pp (simulated)",
                   title=f"one layer at {rows[0]['bits']} bits, the rest float (simulated)")
    if with_snr:
        axes[0][1].barh(names, [r.get("snr_db") or 0 for r in rows][::-1], color="tab:blue")
        axes[0][1].set(xlabel="SNR dB (LiteRT quantizer, int4 LiteRT file)", title="per-layer SNR, int4 LiteRT")
        axes[0][1].tick_params(axis="y", labelleft=False)
    return png(figure, layout=(0, 0, 1, 1))


def _sensitivity_section(results: PipelineResults) -> list[Section]:
    sweep = results.sweep
    rows = sweep.sensitivity
    if not rows:
        return [Section("Per-layer sensitivity (simulated)", ["No swept weight width loses more than 1 point: "
                                                              "no per-layer sensitivity to show."])]
    table = [[r["layer"], str(r["parameters"]), str(r["bits"]), f"{100 * r['accuracy']:.2f}", f"{r['drop_pp']:+.2f}",
              "–" if r.get("snr_db") is None else f"{r['snr_db']:.1f}"] for r in rows]
    notes = [f"At {sweep.sensitivity_bits} bits, the widest swept width where the whole model loses more than "
             f"1 point, each layer's weights alone are quantized (the rest float), simulated in Keras on "
             f"{_images(sweep.n, results.n_test)}. SNR: the LiteRT quantizer's per-layer signal-to-noise "
             "ratio in the int4 LiteRT file."]
    notes += [sweep.snr_note] if sweep.snr_note else []
    headers = ("layer (Keras)", "weights", "bits", "accuracy %", "drop pp", "SNR dB (int4 LiteRT)")
    return [Section("Per-layer sensitivity (simulated)", notes, table=Table(headers, _cells(table)),
                    image="sensitivity.png", png=_sensitivity_plot(results))]


def _pareto_plot(results: PipelineResults) -> bytes:
    """File size against test accuracy: every LiteRT variant, the chosen mix and the Pareto frontier."""
    variants, frontier = results.variants, results.pareto or []
    figure, axis = pyplot().subplots(figsize=(FIGURE_WIDTH, 4.8))
    for i, (name, v) in enumerate(variants.items()):
        chosen = name == "mixed"
        subset = " (subset)" if v.n < results.n_test else ""
        axis.scatter(v.size_bytes / 1024, 100 * v.accuracy, marker="*" if chosen else MARKERS[1 + i % 9],
                     s=260 if chosen else 70, color="tab:red" if chosen else f"C{i % 10}", zorder=3,
                     label=f"{name}{' (chosen mix)' if chosen else ''}{subset}")
    line = [variants[n] for n in frontier if n in variants]
    axis.step([v.size_bytes / 1024 for v in line], [100 * v.accuracy for v in line], where="post",
              color="grey", linestyle="--", label="Pareto frontier")
    axis.set_xscale("log")
    axis.set(xlabel="file size KiB (log scale)", ylabel="test accuracy % (LiteRT)", title="size against accuracy")
    axis.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return png(figure, layout=(0, 0, 1, 1))


def _mixed_facts(results: PipelineResults) -> str:
    """What the exported mixed.tflite scored in LiteRT on the confirming images and on the test set."""
    mixed, variants = results.mixed, results.variants
    v = variants["mixed"]
    test_drop = 100 * (v.reference_accuracy - v.accuracy)
    facts = []
    if (confirmed := mixed.confirmation) is not None:
        over = (f": over the {mixed.max_drop_pp:g} pp budget (the choosing half's bound did not hold here)"
                if confirmed.drop_pp > mixed.max_drop_pp else "")
        facts.append(f"Confirmed in LiteRT on {confirmed.images}: float {100 * confirmed.float_accuracy:.2f} %, "
                     f"mixed.tflite {100 * confirmed.accuracy:.2f} %, confirmed drop {confirmed.drop_pp:+.2f} pp "
                     f"({confirmed.lost} images lost, {confirmed.gained} gained){over}")
    facts.append(f"test accuracy {100 * v.accuracy:.2f} % (drop {test_drop:+.2f} pp"
                 + (f", {test_drop - confirmed.drop_pp:+.2f} pp from the confirmed drop)" if confirmed else ")"))
    facts.append(f"{v.size_bytes / 1024:.1f} KiB")
    facts += [f"{v.size_bytes / variants[base].size_bytes:.3f}x {base}" for base in ("float32", "int8")
              if base in variants]
    speed = f"batch-1 latency {v.latency_us['1'].median_us:.0f} µs (1 thread"
    if "int8" in variants:
        speed += f", {v.latency_us['1'].median_us / variants['int8'].latency_us['1'].median_us:.2f}x int8"
    facts.append(speed + ")")
    return ", ".join(facts) + "."


SEARCHED = {"weights": "weight widths per layer (activations float: dynamic range)",
            "activations": "activation widths per tensor (8 or 16 bits; int8 weights; full integer)",
            "both": "activation widths per tensor (8 or 16 bits), then weight widths per layer (4 or 8 bits; full "
                    "integer)"}


def _mixed_section(results: PipelineResults) -> list[Section]:
    mixed = results.mixed
    objective = ("the smallest kernels" if mixed.objective == "size" else
                 f"the smallest kernels no slower than {mixed.latency_budget_us:.0f} µs predicted (a per-layer "
                 f"latency table measured in LiteRT; predicted {mixed.latency_us:.0f} µs)")
    if mixed.activation_bits:
        objective = (f"the fewest activation bytes per image ({mixed.activation_bytes:,.0f} chosen, mean width "
                     f"{mixed.mean_activation_bits:g} bits)" + (", then the smallest kernels" if mixed.search == "both"
                                                                 else ""))
    notes = [f"Searched: {SEARCHED.get(mixed.search, mixed.search)}. Budget {mixed.max_drop_pp:g} pp, objective "
             f"{objective}. Chosen on {mixed.chose_on} "
             f"({mixed.n} images the model never trained on; never the test set): float "
             f"{100 * mixed.float_accuracy:.2f} %, chosen mix {100 * mixed.accuracy:.2f} % (simulated), drop "
             f"{mixed.drop_pp:+.2f} pp ({mixed.lost} lost, {mixed.gained} gained; with {mixed.z:g} standard error "
             f"of the paired difference: {mixed.drop_bound_pp:+.2f} pp, what the budget bounds); "
             f"{mixed.evaluations} simulated evaluations in {mixed.seconds:.0f} s; parameter-weighted mean "
             f"width {mixed.mean_bits:g} bits."]
    if "mixed" in results.variants:
        notes.append(_mixed_facts(results))
    else:
        notes.append(f"Not exported: {results.failed.get('mixed', 'unknown reason')}.")
    if results.pareto:
        notes.append("Pareto frontier (smallest first; variants scored on the whole test set only): "
                     + ", ".join(results.pareto) + ".")
    table = [[layer, _bits(bits), _bits(mixed.lowest.get(layer, 2))] for layer, bits in mixed.bits.items()]
    out = [Section(f"Mixed precision under a {mixed.max_drop_pp:g} pp budget", notes,
                   table=Table(("layer (plan key)", "weight bits", "narrowest allowed"), _cells(table)),
                   image="pareto.png", png=_pareto_plot(results))]
    if mixed.activation_bits:
        rows = [["the model input" if tensor == INPUT else tensor, _bits(bits)]
                for tensor, bits in mixed.activation_bits.items()]
        out.append(Section("Activation widths chosen under the budget", [
            "Each tensor with its own grid (the input, then each layer output LiteRT requantizes), as simulated and "
            "as mixed.tflite carries it: each op runs at the widest width of the tensors it reads or writes, so a "
            "tensor chosen at 8 bits between two 16-bit ops is carried at 16 (more precise than simulated); the "
            "confirmed figures above are the file's, in LiteRT."],
            table=Table(("activation tensor", "activation bits"), _cells(rows))))
    return out


def _purpose_section(results: PipelineResults) -> list[Section]:
    """What each variant is for on the machine the report ran on, and the export checks."""
    out = []
    if results.purposes:
        out.append(Section(f"What each variant is for, on this machine ({results.machine})",
                           [f"{name}: {text}." for name, text in results.purposes.items()]))
    if results.checks:
        rows = [[name, f"{100 * c['agreement']:.1f}", f"{c['mean_abs_prob_diff']:.2e}",
                 f"{c['decided']} of {c['n']}", _verdict(c)] for name, c in results.checks.items()]
        least = 100 * next(iter(results.checks.values()))["min_agreement"]
        out.append(Section("Export check: each file against the Keras model on real training images",
                           [f"A file needs top-1 agreement of at least {least:.0f} % with the Keras model, on the "
                            f"images the model decides (top-1 minus top-2 probability at least {check.MARGIN}), to "
                            f"be scored; with fewer than {check.MIN_DECIDED} such images (over half of them when fewer "
                            f"are compared) the check gives no verdict "
                            f"(the file is scored, and its agreement is over all the images)."],
                           table=Table(("variant", "top-1 agreement %", "mean |Δp|", "decided images", "verdict"),
                                       _cells(rows))))
    return out


def _verdict(check_dict: dict) -> str:
    """An export check's verdict in the report's table."""
    if not check_dict["conclusive"]:
        return "no verdict (scored)"
    return "passed" if check_dict["passed"] else "FAILED (not scored)"


def _ptq_section(results: PipelineResults) -> list[Section]:
    """The post-training options that were on, which files carry which, and what the weight algorithms did."""
    info = results.ptq
    if info is None:
        return []
    notes = [f"Options on: {', '.join(info.options['names'])}; the simulator (sweep, sensitivity, mix) uses them "
             "all. A file carries an option where its runtime can: activation ranges in calibrated files, the "
             "weight algorithms' kernels and biases in files with quantized weights (QAT variants carry none)."]
    if info.cle_pairs:
        notes.append(f"Cross-layer equalization rescaled {len(info.cle_pairs)} layer pair(s).")
    if info.adaround:
        better = sum(row["error"] < row["nearest_error"] for row in info.adaround)
        notes.append(f"AdaRound learnt {len(info.adaround)} rounding(s) (one per layer, width and widths of the "
                     f"layers before it) in "
                     f"{info.seconds.get('adaround', 0.0):.0f} s; {better} beat round-to-nearest on the calibration "
                     "inputs (the others keep it).")
    rows = [[name, ", ".join(names) or "none"] for name, names in info.carried.items()]
    return [Section("Post-training quantization options", notes, table=Table(("variant", "carries"), _cells(rows)))]


def sections(results: PipelineResults) -> list[Section]:
    """What each variant is for, the export checks, the post-training options, and the sweep, sensitivity and
    mixed-precision sections the results hold."""
    out = _purpose_section(results) + _ptq_section(results)
    if results.sweep:
        out += _sweep_sections(results) + _sensitivity_section(results)
    if results.mixed:
        out += _mixed_section(results)
    elif results.pareto and len(results.variants) > 1:
        out.append(Section("Size against accuracy", ["Pareto frontier (smallest first): " +
                                                     ", ".join(results.pareto) + "."], image="pareto.png",
                           png=_pareto_plot(results)))
    return out
