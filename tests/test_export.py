"""Deployable LiteRT files (`kdeep export`) read by real clients, as a phone app would feed them: MediaPipe Tasks'
ImageClassifier and LiteRT's CompiledModel classify RGB PNG files, the metadata reads back with MediaPipe's
generated schema, and `kdeep predict` serves .keras and .tflite through one path. One DeepConvNet (without dropout,
which trains faster) is trained for one epoch on 4,000 real MNIST images for the module and exported once
(float32, full-integer int8, int16x8 with its own luma front end, sub-8-bit w4a8)."""
import json

import numpy as np
import pytest

from kdeep.cli import main

pytestmark = pytest.mark.slow
VARIANTS = ("float32", "int8", "int16x8", "w4a8")
FLOAT_INPUT = ("float32", "int16x8")  # the others take uint8 pixels
IMAGES = 200  # MNIST test images saved as RGB PNG files


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(run directory, export result, folder of RGB PNGs in class subfolders, their labels)."""
    from PIL import Image

    import kdeep.data
    import kdeep.models
    import kdeep.train
    from quantization import export

    tmp = tmp_path_factory.mktemp("export")
    config = kdeep.train.TrainConfig(epochs=1, batch_size=32, lr=2e-3, limit=4000, val_split=0, out=str(tmp / "run"))
    model = kdeep.models.build("deepconvnet", input_shape=(28, 28, 1), num_classes=10, dropout=0.0)
    run = kdeep.train.fit(model, "mnist", config=config, verbose=0)
    result = export(run.dir, tmp / "files", variants=VARIANTS, limit=IMAGES)
    _train, (x_test, y_test) = kdeep.data.load("mnist")
    pngs = tmp / "png"
    for i in range(IMAGES):
        (pngs / str(y_test[i])).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.repeat(x_test[i], 3, axis=-1)).save(pngs / str(y_test[i]) / f"{i:05d}.png")
    return run.dir, result, pngs, y_test[:IMAGES]


def _files(pngs):
    return sorted(pngs.rglob("*.png"))


def _kdeep_labels(model, pngs):
    from kdeep.classify import classify

    result = classify(model, [pngs], top_k=1)
    assert not result.skipped
    return {p.file: p.label for p in result.predictions}


def test_export_writes_every_variant_and_a_model_card(exported):
    _run, result, _pngs, _labels = exported
    assert set(result.files) == set(VARIANTS) and not result.failed
    card = json.loads((result.out_dir / "model_card.json").read_text())
    assert [v["name"] for v in card["variants"]] == list(VARIANTS)
    assert card["dataset"] == "mnist" and card["labels"] == [str(d) for d in range(10)]
    assert all(v["accuracy"] > 0.8 and v["agreement"] > 0.95 for v in card["variants"])
    assert {v["name"]: v["input_type"] for v in card["variants"]} == {"float32": "float32", "int8": "uint8",
                                                                     "int16x8": "float32", "w4a8": "uint8"}
    assert "## Intended use" in (result.out_dir / "model_card.md").read_text()


def test_metadata_reads_back_with_the_published_schema(exported):
    import zipfile

    from mediapipe.tasks.metadata import metadata_schema_py_generated as schema

    from quantization.metadata import metadata_buffer

    _run, result, _pngs, _labels = exported
    for name, path in result.files.items():
        data = path.read_bytes()
        meta = schema.ModelMetadata.GetRootAs(metadata_buffer(data), 0)
        assert meta.Name() == b"deepconvnet" and meta.Author() == b"kdeep" and meta.Version() == b"1"
        assert name.encode() in meta.Description() and meta.MinParserVersion() == b"1.0.0"
        image = meta.SubgraphMetadata(0).InputTensorMetadata(0)
        properties = schema.ImageProperties()
        properties.Init(image.Content().ContentProperties().Bytes, image.Content().ContentProperties().Pos)
        assert image.Content().ContentPropertiesType() == schema.ContentProperties.ImageProperties
        assert properties.ColorSpace() == schema.ColorSpaceType.RGB
        assert (properties.DefaultSize().Height(), properties.DefaultSize().Width()) == (28, 28)
        if name in FLOAT_INPUT:  # pixels 0..255 onto the contract's [0, 1]
            options = schema.NormalizationOptions()
            unit = image.ProcessUnits(0)
            options.Init(unit.Options().Bytes, unit.Options().Pos)
            assert unit.OptionsType() == schema.ProcessUnitOptions.NormalizationOptions
            assert options.MeanAsNumpy().tolist() == [0.0] * 3 and options.StdAsNumpy().tolist() == [255.0] * 3
        else:  # uint8 pixels as they are
            assert image.ProcessUnitsLength() == 0
        labels = meta.SubgraphMetadata(0).OutputTensorMetadata(0).AssociatedFiles(0)
        assert labels.Name() == b"labels.txt" and labels.Type() == schema.AssociatedFileType.TENSOR_AXIS_LABELS
        with zipfile.ZipFile(path) as archive:
            assert archive.read("labels.txt").decode().split() == [str(d) for d in range(10)]


def test_mediapipe_image_classifier_agrees_with_kdeep(exported):
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    _run, result, pngs, labels = exported
    for name, path in result.files.items():
        ours = _kdeep_labels(path, pngs)
        options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(path)), max_results=1)
        with vision.ImageClassifier.create_from_options(options) as classifier:
            theirs = {str(f): classifier.classify(mp.Image.create_from_file(str(f))).classifications[0]
                      .categories[0].category_name for f in _files(pngs)}
        agreement = np.mean([theirs[f] == ours[f] for f in ours])
        accuracy = np.mean([theirs[str(f)] == f.parent.name for f in _files(pngs)])
        assert agreement >= 0.995, (name, agreement)
        assert accuracy > 0.8, (name, accuracy)


def test_compiled_model_runs_the_signature_by_name(exported):
    from PIL import Image
    from ai_edge_litert.compiled_model import CompiledModel

    _run, result, pngs, _labels = exported
    for name, path in result.files.items():
        ours = _kdeep_labels(path, pngs)
        model = CompiledModel.from_file(str(path))
        assert model.get_signature_list() == {"serving_default": {"inputs": ["image"], "outputs": ["probabilities"]}}
        details = model.get_input_tensor_details("serving_default")["image"]
        dtype = np.dtype(details["dtype"])
        image_buffer = model.create_input_buffer_by_name("serving_default", "image")
        output_buffer = model.create_output_buffer_by_name("serving_default", "probabilities")
        theirs = {}
        for file in _files(pngs):
            pixels = np.asarray(Image.open(file).convert("RGB"))[None]
            image_buffer.write(pixels.astype(np.float32) / 255 if dtype == np.float32 else pixels)  # float: [0, 1]
            model.run_by_name("serving_default", {"image": image_buffer}, {"probabilities": output_buffer})
            scores = output_buffer.read(10, np.uint8 if dtype == np.uint8 else np.float32)
            theirs[str(file)] = str(int(np.argmax(scores)))
        assert np.mean([theirs[f] == ours[f] for f in ours]) >= 0.995, name


def test_predict_on_png_folder_matches_keras_evaluation(exported, capsys):
    import kdeep.data
    from kdeep import scoring

    run, _result, pngs, labels = exported
    _train, (x_test, _y) = kdeep.data.load("mnist")
    keras_labels = scoring.predict(run, x_test[:IMAGES]).argmax(axis=-1)
    assert main(["predict", str(run), str(pngs), "--top-k", "2", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    by_index = {int(p["file"].rsplit("/", 1)[-1][:5]): p["top"][0]["label"] for p in printed["predictions"]}
    assert len(by_index) == IMAGES and all(len(p["top"]) == 2 for p in printed["predictions"])
    assert all(by_index[i] == str(keras_labels[i]) for i in range(IMAGES))  # 100 % agreement
    assert printed["accuracy"] == pytest.approx(np.mean([by_index[i] == str(label) for i, label in enumerate(labels)]))


def test_predict_threads_change_no_label_or_probability(exported, capsys):
    _run, result, pngs, _labels = exported
    printed = []
    for threads in ("1", "2"):
        assert main(["predict", str(result.files["int8"]), str(pngs), "--json", "--threads", threads]) == 0
        printed.append(json.loads(capsys.readouterr().out)["predictions"])
    assert len(printed[0]) == IMAGES and printed[0] == printed[1]


def test_predict_with_a_tflite_file_and_the_preset_list_load_no_keras_nor_tensorflow(exported):
    """What an edge machine runs: `kdeep predict x.tflite` and `kdeep presets` on LiteRT and numpy alone (they took
    6-14 s importing TensorFlow through the models package before it loaded Keras lazily)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from kdeep.classify import classify

    _run, result, pngs, _labels = exported
    code = ("import sys, json; from kdeep.cli import main; main(sys.argv[1:]); "
            "print(json.dumps(sorted(m for m in ('tensorflow', 'keras', 'tf_keras', 'jax') if m in sys.modules)))")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    image = _files(pngs)[0]
    for argv in (["predict", str(result.files["int8"]), str(image), "--json"], ["presets", "--json"]):
        done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        printed, imported = done.stdout.strip().rsplit("\n", 1)
        assert imported == "[]", (argv, imported)
        if argv[0] == "predict":
            top = json.loads(printed)["predictions"][0]["top"][0]
            assert top["label"] == classify(result.files["int8"], [image]).predictions[0].top[0][0]
        else:
            assert "resnet20.fashion_mnist" in {card["name"] for card in json.loads(printed)}


def test_predict_reads_any_size_and_channel_count_and_skips_what_is_no_image(exported, tmp_path, capsys):
    from PIL import Image

    _run, result, pngs, _labels = exported
    digit = np.asarray(Image.open(_files(pngs)[0]).convert("L"))
    big = Image.fromarray(digit).resize((112, 112), Image.BILINEAR)
    big.convert("RGBA").save(tmp_path / "rgba.png")
    big.save(tmp_path / "grey.jpg", quality=95)
    (tmp_path / "notes.txt").write_text("not an image")
    code = main(["predict", str(result.files["int8"]), str(tmp_path), "--top-k", "1"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.count("kdeep: skipped") == 1 and "notes.txt" in captured.err
    lines = [line for line in captured.out.splitlines() if line.startswith(str(tmp_path))]
    assert len(lines) == 2 and all(f": {_files(pngs)[0].parent.name} " in line for line in lines)


def test_int8_io_and_grey_input_options(exported, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from kdeep.classify import classify
    from quantization import export

    run, _result, pngs, _labels = exported
    result = export(run, tmp_path, variants="int8", integer_io="int8", channels="model", limit=IMAGES, score=False)
    runner = Interpreter(model_path=str(result.files["int8"]))
    detail = runner.get_input_details()[0]
    assert detail["dtype"] == np.int8 and list(detail["shape"]) == [1, 28, 28, 1]
    assert runner.get_signature_list()["serving_default"] == {"inputs": ["image"], "outputs": ["probabilities"]}
    ours = _kdeep_labels(result.files["int8"], pngs)
    reference = _kdeep_labels(run, pngs)
    assert np.mean([ours[f] == reference[f] for f in ours]) >= 0.97
    assert classify(result.files["int8"], [pngs]).labels == tuple(str(d) for d in range(10))


def test_logits_and_a_minus_one_to_one_range_become_probabilities_and_normalization(exported, tmp_path):
    import dataclasses

    import kdeep.models
    from kdeep import io
    from kdeep.classify import classify
    from kdeep.contract import attach, contract_of
    from quantization import export
    from quantization.metadata import input_normalization

    _run, _result, pngs, _labels = exported
    model = kdeep.models.build("deepconvnet", classifier_activation=None)  # logits, untrained
    attach(model, dataclasses.replace(contract_of(model), input_range=(-1.0, 1.0)))
    assert contract_of(model).output == "logits"
    keras_file = io.save_model(model, tmp_path / "logits.keras")
    result = export(keras_file, tmp_path / "files", variants="float32")  # no dataset: float variants only
    tflite = result.files["float32"]
    assert input_normalization(tflite.read_bytes()) == ((127.5,) * 3, (127.5,) * 3)
    files = _files(pngs)[:50]
    ours = classify(tflite, files, top_k=10)
    keras = classify(keras_file, files, top_k=10)
    for lite, reference in zip(ours.predictions, keras.predictions):
        lite_p, keras_p = dict(lite.top), dict(reference.top)
        assert sum(lite_p.values()) == pytest.approx(1.0, abs=1e-4)
        assert all(abs(lite_p[label] - keras_p[label]) < 1e-4 for label in keras_p)
    assert result.card.labels == tuple(str(i) for i in range(10))


def test_deployable_int16x8_file_of_the_resnet_preset_keeps_the_accuracy(fashion_mnist, tmp_path):
    """The deployable int16x8 file (RGB input, the luma computed in the graph) classifies as the Keras model: with
    the luma as a channel SUM, the TF converter's int16 kernels put it 12 points below (83.15 % against 95.65 % on
    the first 2,000 test images; 83 % top-1 agreement on these 500), so 16-bit-activation graphs compute it with
    slices, multiplies and adds (100 % agreement here)."""
    import kdeep.models
    from kdeep.data import scale_pixels
    from quantization import convert, deploy, litert, quantize

    resnet = kdeep.models.build("resnet20", weights="fashion_mnist")
    graph = deploy.deployment(resnet)
    (x_train, _), (x_test, _y) = fashion_mnist
    calibration = graph.channels_of(convert.calibration_images(x_train, samples=100))
    path = quantize(resnet, ["int16x8"], calibration, tmp_path, graph=graph)["int16x8"]
    x = x_test[:500]
    deployed = litert.predict(path, graph.channels_of(x)).argmax(-1)
    agreement = float(np.mean(deployed == resnet.predict(scale_pixels(x), verbose=0).argmax(-1)))
    assert agreement >= 0.98, f"int16x8 agrees with the Keras model on {agreement:.1%} of 500 test images"
