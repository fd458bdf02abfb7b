"""Every variant `kdeep export` writes, classified by MediaPipe Tasks' ImageClassifier from the test images saved as
RGB PNG files, against kdeep's own LiteRT score of the same file (the model card's).

    python apps/edge_clients.py /work/runs/p/dcn_book_s0 --out /work/runs/edge/mnist
    python apps/edge_clients.py RUN --out OUT --variants float32,int8,w4a8 --limit 1000

Writes OUT/files/ (the deployable files and their model card), OUT/png/ (the first --limit test images of the
run's dataset, as RGB PNG files) and OUT/edge_clients.json, and prints per variant: kdeep's LiteRT accuracy (on the
arrays, fed as uint8 pixels through the file's input), MediaPipe's accuracy on the PNG files, their difference in
points (target: within 0.05) and MediaPipe's top-1 agreement with `kdeep predict` on the same PNG files. Needs
`pip install mediapipe==1.2.2` (the test extra's client, not a kdeep dependency).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def write_pngs(dataset: str, folder: Path, limit: int | None) -> np.ndarray:
    """The test split's first `limit` images as RGB PNG files folder/<index>.png; returns their labels."""
    from PIL import Image

    import kdeep.data

    _train, (x_test, y_test) = kdeep.data.load(dataset)
    x_test, y_test = x_test[:limit], y_test[:limit]
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(x_test):
        path = folder / f"{i:05d}.png"
        if not path.exists():
            Image.fromarray(np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image).save(path)
    return np.asarray(y_test).reshape(-1)


def mediapipe_labels(tflite: Path, files: list[Path]) -> np.ndarray:
    """MediaPipe's top-1 class index for each file."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(tflite)), max_results=1)
    with vision.ImageClassifier.create_from_options(options) as classifier:
        return np.array([classifier.classify(mp.Image.create_from_file(str(f))).classifications[0].categories[0].index
                         for f in files])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a kdeep run directory (its config.json names the dataset)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--variants", help="comma-separated variants (default: all)")
    parser.add_argument("--limit", type=int, help="only the first N test images (default: all)")
    args = parser.parse_args()

    from kdeep.classify import classify
    from kdeep.errors import KdeepError
    from kdeep.io import write_json
    from kdeep.train.run_dir import dataset_of
    from quantization import export
    from quantization.variants import resolve

    try:
        resolve(args.variants)
        dataset = dataset_of(args.run, None, required=True)
    except KdeepError as error:
        parser.error(str(error))  # one line, exit 2, before anything is written
    out = Path(args.out)
    labels = write_pngs(dataset, out / "png", args.limit)
    exported = export(args.run, out / "files", variants=args.variants, limit=args.limit)
    rows = []
    for card in exported.card.variants:
        files = [out / "png" / f"{i:05d}.png" for i in range(card.scored)]
        theirs = mediapipe_labels(exported.files[card.name], files)
        ours = classify(exported.files[card.name], files, top_k=1)
        index = {label: i for i, label in enumerate(ours.labels)}
        predicted = np.array([index[p.label] for p in ours.predictions])
        row = {"variant": card.name, "images": card.scored, "kdeep_litert_accuracy": card.accuracy,
               "mediapipe_accuracy": float(np.mean(theirs == labels[:card.scored])),
               "mediapipe_agrees_with_kdeep_predict": float(np.mean(theirs == predicted)),
               "kdeep_predict_accuracy": float(np.mean(predicted == labels[:card.scored]))}
        row["difference_points"] = 100 * (row["mediapipe_accuracy"] - row["kdeep_litert_accuracy"])
        rows.append(row)
        print(f"{card.name:>13}: kdeep LiteRT {100 * card.accuracy:.2f}%, MediaPipe "
              f"{100 * row['mediapipe_accuracy']:.2f}% ({row['difference_points']:+.2f} points) on {card.scored} "
              "images; MediaPipe agrees with kdeep "
              f"predict on {100 * row['mediapipe_agrees_with_kdeep_predict']:.2f}%", flush=True)
    for name, why in exported.failed.items():
        print(f"{name:>13}: not exported: {why}")
    path = write_json(out / "edge_clients.json", {"run": args.run, "dataset": dataset, "rows": rows,
                                                  "failed": exported.failed, "machine": exported.card.machine,
                                                  "date": exported.card.date})
    print(f"wrote {path} and {exported.out_dir / 'model_card.md'}")


if __name__ == "__main__":
    main()
