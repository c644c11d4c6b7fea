"""The cost of an Inception module with and without 1x1 bottlenecks, counted by tl_kit.summary.

The lecture notes' example (after Szegedy et al., "Going Deeper with Convolutions",
CVPR 2015, arXiv:1409.4842, Section 4 and Figure 2): a 5x5 "same" convolution from a
28x28x192 volume to 28x28x32 costs 28*28*32 * 5*5*192 = 120,422,400 multiplications
("120M"); putting a 1x1 convolution down to 16 channels in front of it (the bottleneck)
costs 28*28*16*192 + 28*28*32 * 5*5*16 = 12,443,648 ("12.4M"), about ten times less,
with the same input and output shapes.

This script builds both with Keras and counts them with :func:`tl_kit.summary` (MACs:
multiply-adds of convolution and dense layers, biases ignored, as the papers count),
then does the same for a whole Inception module: the naive module of Figure 2(a)
(1x1, 3x3 and 5x5 convolutions and 3x3 max pooling side by side on the input) against
the module with dimension reductions of Figure 2(b) (1x1 reductions before the 3x3 and
5x5 convolutions, a 1x1 projection after the pooling), with the filter numbers of
Table 1 of the paper, for module 3a (28x28x192 input) and for every module of GoogLeNet
on its own input. The reduced modules are built by tl_kit's GoogLeNet code
(``tl_kit.models.inception``), and module 3a is checked against the rows of
``tl_kit.summary("googlenet")``.

Usage::

    python recipes/inception_cost.py            # all tables (a few seconds)
    python recipes/inception_cost.py --quick    # lecture example and module 3a only
    python recipes/inception_cost.py --json

Measured (``python recipes/inception_cost.py``; these are exact counts, the same on any
machine)::

    Lecture example: 28x28x192 -> 28x28x32
      5x5 conv, 32 filters          :   120,422,400 MACs    153,632 params
      1x1 conv 16, then 5x5 conv 32 :    12,443,648 MACs     15,920 params
      ratio                         :          9.68x

    Inception modules (Table 1 filters): naive (Fig. 2a) vs with 1x1 reductions (Fig. 2b)
    module  input        out ch naive/red  params naive  params red   MACs naive      MACs red     ratio
    ----------------------------------------------------------------------------------------------------
    3a      28x28x192       416/256            387,296     163,696    303,464,448   128,049,152    2.37x
    3b      28x28x256       672/480          1,089,952     388,736    854,196,224   304,267,264    2.81x
    4a      14x14x480       928/512          1,567,168     376,176    307,077,120    73,608,192    4.17x
    4b      14x14x512       960/512          1,933,760     449,160    378,929,152    87,908,352    4.31x
    4c      14x14x512       960/512          2,064,832     510,104    404,619,264    99,850,240    4.05x
    4d      14x14x512       976/528          2,204,112     605,376    431,915,008   118,515,712    3.64x
    4e      14x14x528      1232/832          3,346,112     868,352    655,699,968   169,996,288    3.86x
    5a      7x7x832        1536/832          5,272,256   1,043,456    258,306,048    51,079,168    5.06x
    5b      7x7x832        1728/1024         5,858,176   1,444,080    287,006,720    70,697,984    4.06x
    all                                     23,723,664   5,849,136  3,881,213,952  1,103,972,352    3.52x

    Check: module 3a inside tl_kit.summary('googlenet'): 128,049,152 MACs, 163,696 params (whole GoogLeNet: 1,582,671,872 MACs, 6,998,552 params)

The naive rows put each naive module on the input the reduced network gives it (Table
1's sizes); a whole network of naive modules would be far worse, since the pooling
branch passes every input channel on and the width would grow module after module
(416 channels after 3a, about 4,900 after 5b). The bottleneck saves ~10x on the
lecture's 5x5 branch, 2.4x on module 3a as a whole (its 1x1 branch costs the same in
both) and 3.5x over the nine modules, with 4x fewer parameters.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = [
    "MODULE_INPUTS",
    "lecture_example",
    "naive_module",
    "reduced_module",
    "module_costs",
    "googlenet_module_macs",
    "main",
]

# Input (H, W, C) of each Inception module of GoogLeNet at 224x224 (Table 1 of the paper).
MODULE_INPUTS: dict[str, tuple[int, int, int]] = {
    "3a": (28, 28, 192),
    "3b": (28, 28, 256),
    "4a": (14, 14, 480),
    "4b": (14, 14, 512),
    "4c": (14, 14, 512),
    "4d": (14, 14, 512),
    "4e": (14, 14, 528),
    "5a": (7, 7, 832),
    "5b": (7, 7, 832),
}


def _single(input_shape, *convs):
    import keras
    from keras import layers

    inputs = keras.Input(input_shape)
    x = inputs
    for filters, kernel, name in convs:
        x = layers.Conv2D(filters, kernel, padding="same", activation="relu", name=name)(x)
    return keras.Model(inputs, x)


def lecture_example() -> dict[str, dict[str, int | tuple]]:
    """The lecture's 28x28x192 -> 5x5 conv 32 example, without and with a 1x1 reduction to 16.

    Returns ``{"direct": {...}, "bottleneck": {...}}``, each with ``macs``, ``params``
    (convolution biases included) and ``output_shape``.

    Example:
    ```python
    ex = lecture_example()
    ex["direct"]["macs"], ex["bottleneck"]["macs"]    # (120422400, 12443648)
    ```
    """
    from tl_kit.analysis import summary

    direct = summary(_single((28, 28, 192), (32, 5, "conv5x5")))
    reduced = summary(_single((28, 28, 192), (16, 1, "reduce"), (32, 5, "conv5x5")))
    out = {}
    for key, s in (("direct", direct), ("bottleneck", reduced)):
        out[key] = {
            "macs": s.macs,
            "params": s.params,
            "output_shape": tuple(s.rows[-1].output_shape),
        }
    return out


def naive_module(input_shape: tuple[int, int, int], name: str = "3a"):
    """Figure 2(a): 1x1, 3x3, 5x5 convolutions and 3x3 max pooling on the input, concatenated.

    The filter numbers are Table 1's (#1x1, #3x3, #5x5) for module ``name``; the pooling
    branch passes all input channels through, so the output is wider than the input.
    """
    import keras
    from keras import layers

    from tl_kit.models.inception import _MODULES

    n1, _, n3, _, n5, _ = _MODULES[name]
    inputs = keras.Input(input_shape, name="image")
    prefix = f"inception{name}"
    b1 = layers.Conv2D(n1, 1, padding="same", activation="relu", name=f"{prefix}_1x1_conv")(inputs)
    b2 = layers.Conv2D(n3, 3, padding="same", activation="relu", name=f"{prefix}_3x3_conv")(inputs)
    b3 = layers.Conv2D(n5, 5, padding="same", activation="relu", name=f"{prefix}_5x5_conv")(inputs)
    b4 = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{prefix}_pool")(inputs)
    x = layers.Concatenate(name=f"{prefix}_concat")([b1, b2, b3, b4])
    return keras.Model(inputs, x, name=f"naive_{prefix}")


def reduced_module(input_shape: tuple[int, int, int], name: str = "3a"):
    """Figure 2(b), built by tl_kit's GoogLeNet code: 1x1 reductions and a pool projection."""
    import keras

    from tl_kit.models.inception import _MODULES, _inception

    inputs = keras.Input(input_shape, name="image")
    x = _inception(inputs, _MODULES[name], f"inception{name}", bn=False)
    return keras.Model(inputs, x, name=f"reduced_inception{name}")


def module_costs(names: tuple[str, ...] = tuple(MODULE_INPUTS)) -> list[dict]:
    """Params and MACs of each named module, naive (Fig. 2a) and with reductions (Fig. 2b).

    Returns one dict per module: ``module``, ``input_shape``, ``naive_out_channels``,
    ``reduced_out_channels``, ``naive_params``, ``reduced_params``, ``naive_macs``,
    ``reduced_macs``, ``macs_ratio`` (naive / reduced).
    """
    from tl_kit.analysis import summary

    rows = []
    for name in names:
        shape = MODULE_INPUTS[name]
        naive = summary(naive_module(shape, name))
        reduced = summary(reduced_module(shape, name))
        rows.append(
            {
                "module": name,
                "input_shape": shape,
                "naive_out_channels": naive.rows[-1].output_shape[-1],
                "reduced_out_channels": reduced.rows[-1].output_shape[-1],
                "naive_params": naive.params,
                "reduced_params": reduced.params,
                "naive_macs": naive.macs,
                "reduced_macs": reduced.macs,
                "macs_ratio": naive.macs / reduced.macs,
            }
        )
    return rows


def googlenet_module_macs(name: str = "3a") -> dict[str, int]:
    """MACs and params of module ``name`` inside ``tl_kit.summary("googlenet")`` (224x224)."""
    from tl_kit.analysis import summary

    s = summary("googlenet")
    rows = [r for r in s.rows if r.name.startswith(f"inception{name}_")]
    return {
        "macs": sum(r.macs for r in rows),
        "params": sum(r.params for r in rows),
        "googlenet_macs": s.macs,
        "googlenet_params": s.params,
    }


def format_tables(example: dict, modules: list[dict], check: dict | None) -> str:
    d, b = example["direct"], example["bottleneck"]
    lines = [
        "Lecture example: 28x28x192 -> 28x28x32",
        f"  5x5 conv, 32 filters          : {d['macs']:>13,} MACs  {d['params']:>9,} params",
        f"  1x1 conv 16, then 5x5 conv 32 : {b['macs']:>13,} MACs  {b['params']:>9,} params",
        f"  ratio                         : {d['macs'] / b['macs']:>13.2f}x",
        "",
        "Inception modules (Table 1 filters): naive (Fig. 2a) vs with 1x1 reductions (Fig. 2b)",
    ]
    header = (
        "module  input        out ch naive/red  params naive  params red   "
        "MACs naive      MACs red     ratio"
    )
    lines += [header, "-" * len(header)]
    for r in modules:
        shape = "x".join(str(v) for v in r["input_shape"])
        lines.append(
            f"{r['module']:6s}  {shape:11s}  {r['naive_out_channels']:>6}/{r['reduced_out_channels']:<8}"
            f"  {r['naive_params']:>12,}  {r['reduced_params']:>10,}  {r['naive_macs']:>13,}"
            f"  {r['reduced_macs']:>12,}  {r['macs_ratio']:6.2f}x"
        )
    if len(modules) > 1:
        tn = sum(r["naive_macs"] for r in modules)
        tr = sum(r["reduced_macs"] for r in modules)
        pn = sum(r["naive_params"] for r in modules)
        pr = sum(r["reduced_params"] for r in modules)
        lines.append(
            f"{'all':6s}  {'':11s}  {'':15s}  {pn:>12,}  {pr:>10,}  {tn:>13,}  {tr:>12,}"
            f"  {tn / tr:6.2f}x"
        )
    if check is not None:
        lines += [
            "",
            f"Check: module 3a inside tl_kit.summary('googlenet'): {check['macs']:,} MACs, "
            f"{check['params']:,} params (whole GoogLeNet: {check['googlenet_macs']:,} MACs, "
            f"{check['googlenet_params']:,} params)",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Cost of an Inception module with and without 1x1 bottlenecks "
        "(Szegedy et al. 2015), counted by tl_kit.summary.",
        epilog="examples:\n  python recipes/inception_cost.py\n"
        "  python recipes/inception_cost.py --quick --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="lecture example and module 3a only")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    example = lecture_example()
    modules = module_costs(("3a",) if args.quick else tuple(MODULE_INPUTS))
    check = None if args.quick else googlenet_module_macs("3a")
    if args.json:
        print(
            json.dumps(
                {"lecture_example": example, "modules": modules, "googlenet_3a": check}, indent=2
            )
        )
    else:
        print(format_tables(example, modules, check))
    return 0


if __name__ == "__main__":
    sys.exit(main())
