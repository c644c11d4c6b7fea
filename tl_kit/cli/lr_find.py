"""``tl-kit lr-find``: the learning-rate finder (tl_kit.lr_find, Learner.lr_find)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tl_kit.cli.command import EXIT_OK, Subcommand
from tl_kit.cli.common import echo, existing_dir, image_size, print_json
from tl_kit.errors import UserError


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DIR", help="image folder or tfds:NAME")
    p.add_argument("--backbone", default=None, help="backbone name; default: the recipe's")
    p.add_argument(
        "--recipe",
        default="small",
        help="recipe whose stage is swept: small, medium, large, scratch or a TOML file "
        "(default small)",
    )
    p.add_argument(
        "--stage", default=None, help="stage name or index (default: the first with epochs)"
    )
    p.add_argument("--weights", default="auto", help="as for tl-kit train")
    p.add_argument("--image-size", default=None, metavar="S", help="input size, S or H,W")
    p.add_argument("--steps", type=int, default=100, help="sweep steps (default 100)")
    p.add_argument("--min-lr", type=float, default=1e-7)
    p.add_argument("--max-lr", type=float, default=10.0)
    p.add_argument("--batch-size", type=int, default=None, help="default: the stage's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", metavar="DIR", default=None,
        help="where lr_find.png and lr_find.json go (default runs/lr-find-<backbone>-<time>)",
    )
    p.add_argument(
        "--write-recipe", metavar="TOML", default=None,
        help="write the recipe with the stage's learning_rate set to the suggestion "
        "(then: tl-kit train TOML --data DIR)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _run(args: argparse.Namespace) -> int:
    data = existing_dir(args.data, "data")
    size = image_size(args.image_size)
    from tl_kit.backbones import get_backbone
    from tl_kit.lr_find import stage_index
    from tl_kit.recipes import recipe_from_name
    from tl_kit.train import Learner

    recipe = recipe_from_name(args.recipe, auto=False)  # the sweep needs a recipe's stage
    stage_index(recipe, args.stage)  # unknown stage: one line before anything loads
    backbone = args.backbone or recipe.backbone
    if not backbone:
        raise UserError(
            f"Which backbone? The recipe names none: pass --backbone NAME. "
            f"Received: backbone=None, recipe={args.recipe!r}"
        )
    spec = get_backbone(backbone)
    if args.write_recipe and Path(args.write_recipe).exists():
        raise UserError(
            f"{args.write_recipe!r} exists already; choose another --write-recipe path. "
            f"Received: write_recipe={args.write_recipe!r}"
        )
    weights = None if str(args.weights).lower() == "none" else args.weights
    out = args.out or str(
        Path("runs", f"lr-find-{spec.name.replace(':', '_')}-{time.strftime('%Y%m%d-%H%M%S')}")
    )
    learner = Learner(spec.name, recipe=recipe, weights=weights, image_size=size, run_dir=out,
                      seed=args.seed, verbose=0, tensorboard=False)
    result = learner.lr_find(data, stage=args.stage, out=out, num_steps=args.steps,
                             min_lr=args.min_lr, max_lr=args.max_lr, batch_size=args.batch_size)
    if args.write_recipe:
        result.apply(recipe, args.stage).save(args.write_recipe)
        result.files["recipe_toml"] = args.write_recipe
    if args.json:
        print_json(result.to_dict())
        return EXIT_OK
    echo(f"stage {result.stage!r}: {len(result.learning_rates)} steps ({result.stopped})")
    echo(f"suggested learning rate: {result.suggested:.3g}  ({result.rule})")
    echo(f"min loss at {result.min_loss_lr:.3g}; min / 10 = {result.min_div_10:.3g}")
    echo(f"plot: {result.files['plot_png']}")
    if args.write_recipe:
        echo(f"next: tl-kit train {args.write_recipe} --data {data} --backbone {spec.name}")
    return EXIT_OK


COMMAND = Subcommand(
    name="lr-find",
    help="learning-rate finder: exponential sweep, loss curve, a suggested rate",
    description="Sweep the learning rate exponentially (1e-7 to 10) over one recipe "
    "stage's trainable layers, one batch per rate, until the smoothed loss exceeds 4x its "
    "minimum; the weights are restored afterwards. Suggests the rate where the smoothed loss "
    "falls fastest (before its minimum) and writes lr_find.png and lr_find.json.",
    add_arguments=_args,
    run=_run,
    epilog="examples:\n"
    "  tl-kit lr-find --data data/my_photos --backbone mobilenet_v2\n"
    "  tl-kit lr-find --data data/my_photos --backbone resnet50 --recipe medium --stage "
    "finetune --write-recipe tuned.toml\n"
    "  tl-kit lr-find --data data/textures --backbone lenet5 --weights none --recipe scratch "
    "--json",
)
