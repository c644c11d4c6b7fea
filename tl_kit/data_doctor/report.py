"""The doctor's files: doctor.json (the five sections), doctor.md (readable) and
suspects.png (the likely label errors: image, given -> suggested)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tl_kit._io import write_json_atomic

MAX_SUSPECTS = 24  # images in suspects.png
MAX_ROWS = 50  # rows per table in doctor.md


def summary_table(result) -> str:
    """A short plain-text summary (what ``tl-kit doctor`` prints)."""
    d = result.duplicates
    cc = result.class_counts
    rows = [
        ("images", str(result.settings.get("images", sum(cc["total"].values())))),
        ("classes", str(len(cc["total"]))),
        ("exact duplicates", f"{sum(p['kind'] == 'exact' for p in d)} pairs "
                             f"({sum(p['kind'] == 'exact' and p['cross_split'] for p in d)} across splits)"),
        ("near duplicates", f"{sum(p['kind'] == 'near' for p in d)} pairs "
                            f"({sum(p['kind'] == 'near' and p['cross_split'] for p in d)} across splits)"),
        ("likely label errors", str(len(result.label_issues))),
        ("imbalance (max/min)", f"{cc['imbalance_ratio']:.2f}"),
        ("tiny classes", ", ".join(cc["tiny_classes"]) or "-"),
        ("size/aspect outliers", str(len(result.outliers))),
        ("hygiene (skipped/converted)", str(len(result.hygiene))),
    ]
    w = max(len(k) for k, _ in rows)
    lines = [f"data doctor: {result.data}"] + [f"  {k:<{w}}  {v}" for k, v in rows]
    for key in ("json", "markdown", "suspects_png"):
        if key in result.files:
            lines.append(f"  {key:<{w}}  {result.files[key]}")
    return "\n".join(lines)


def _table(header: list[str], rows: list[list]) -> list[str]:
    if not rows:
        return ["(none)", ""]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(v) for v in r) + " |" for r in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        out.append(f"\n... and {len(rows) - MAX_ROWS} more (doctor.json lists all)")
    return out + [""]


def markdown(result) -> str:
    """doctor.md: settings, then one section per finding."""
    s = result.settings
    cc = result.class_counts
    lines = [f"# Data doctor: {result.data}", "",
             f"{s['images']} images, {len(cc['total'])} classes, layout: {s['layout']}. Features: "
             f"{s['backbone']} (ImageNet, BatchNorm folded) at {s['image_size'][0]}x{s['image_size'][1]} px. "
             f"Near duplicates: feature cosine >= {s['near_cosine']} or perceptual hash within "
             f"{s['phash_bits']}/64 bits. Label issues: confident learning on out-of-fold "
             f"probabilities of logistic-regression heads ({s['folds']}-fold, stratified). Tiny class: "
             f"< {s['tiny_class']} images; outliers: |robust z| > {s['outlier_z']} of log size or "
             f"log aspect ratio. Took {result.timings.get('total_s', 0):.1f} s.", "",
             "```", summary_table(result), "```", "",
             "## Duplicates", ""]
    lines += _table(["a", "b", "kind", "similarity", "across splits"],
                    [[f"`{p['a']}`", f"`{p['b']}`", p["kind"], f"{p['similarity']:.4f}",
                      "**yes (leak)**" if p["cross_split"] else "no"] for p in result.duplicates])
    lines += ["## Likely label errors", "", "See suspects.png.", ""]
    lines += _table(["path", "given", "suggested", "confidence"],
                    [[f"`{r['path']}`", r["given"], r["suggested"], f"{r['confidence']:.3f}"]
                     for r in result.label_issues])
    lines += ["## Class counts", "", f"Imbalance ratio (largest / smallest class): "
              f"{cc['imbalance_ratio']:.2f}; tiny classes: {', '.join(cc['tiny_classes']) or 'none'}.", ""]
    splits = list(cc["per_split"])
    lines += _table(["class", *splits, "total"],
                    [[c, *(cc["per_split"][sp][c] for sp in splits), n] for c, n in cc["total"].items()])
    lines += ["## Size and aspect-ratio outliers", ""]
    lines += _table(["path", "width", "height", "kind", "z"],
                    [[f"`{r['path']}`", r["width"], r["height"], r["kind"], r["z"]] for r in result.outliers])
    lines += ["## Hygiene (skipped and converted files)", ""]
    lines += _table(["path", "status", "reason", "decoder"],
                    [[f"`{r['path']}`", r["status"], r["reason"], r["decoder"] or "-"] for r in result.hygiene])
    return "\n".join(lines)


def suspects_png(result, path: Path, root: Path) -> Path:
    """A grid of the top label suspects (image, "given -> suggested (p)")."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from PIL import Image

    items = result.label_issues[:MAX_SUSPECTS]
    cols = min(6, max(1, len(items)))
    rows = max(1, -(-len(items) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.7 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    if not items:
        axes[0, 0].text(0.5, 0.5, "no likely label errors", ha="center", va="center")
    for ax, r in zip(axes.ravel(), items, strict=False):
        try:
            with Image.open(root / r["path"]) as im:
                im.thumbnail((160, 160))
                ax.imshow(np.asarray(im.convert("RGB")))
        except Exception:  # noqa: BLE001 - the image cannot be shown: its caption still is
            pass
        ax.set_title(f"{r['given']} -> {r['suggested']}\n({r['confidence']:.2f})", fontsize=8)
    fig.suptitle("likely label errors: given -> suggested (out-of-fold probability)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_report(result, out: Path) -> dict[str, str]:
    """Write doctor.json, doctor.md and suspects.png into ``out`` (created); returns paths."""
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "doctor.json", result.to_dict())
    (out / "doctor.md").write_text(markdown(result) + "\n")
    png = suspects_png(result, out / "suspects.png", Path(result.data))
    return {"json": str(out / "doctor.json"), "markdown": str(out / "doctor.md"),
            "suspects_png": str(png)}
