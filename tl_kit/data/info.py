"""What a load found: :class:`DatasetInfo` (class names, counts, split, class weights, skips)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from tl_kit.data.split import SPLITS, compute_class_weights

__all__ = ["DatasetInfo", "make_info"]


@dataclass
class DatasetInfo:
    """What was loaded: class names (in label order), counts, split, class weights, skips."""

    class_names: list[str]
    num_classes: int
    counts: dict[str, int]
    split_counts: dict[str, dict[str, int]]
    class_weights: dict[int, float]
    channels: int
    source: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: folders: "memory" (decoded once into a uint8 cache) or "stream" (decoded in the
    #: tf.data graph each epoch), with the reason; "" for other sources
    pipeline: str = ""
    #: folders: the hygiene index the load used and how many files it already knew (those
    #: were only stat'ed, not decoded); "" for other sources
    index: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["class_weights"] = {str(k): float(v) for k, v in self.class_weights.items()}
        d["skipped"] = [list(s) for s in self.skipped]
        return d

    def __str__(self) -> str:
        lines = [f"{self.source}: {self.num_classes} classes, {sum(self.counts.values())} images"]
        width = max([len(c) for c in self.class_names] + [5])
        splits = [s for s in SPLITS if s in self.split_counts]
        lines.append(f"  {'class':<{width}} " + " ".join(f"{s:>6}" for s in splits) + "  weight")
        for i, c in enumerate(self.class_names):
            row = " ".join(f"{self.split_counts[s].get(c, 0):>6}" for s in splits)
            lines.append(f"  {c:<{width}} {row}  {self.class_weights.get(i, 1.0):.3f}")
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} file(s); see hygiene report")
        if self.pipeline:
            lines.append(f"  pipeline: {self.pipeline}")
        if self.index:
            lines.append(f"  hygiene index: {self.index}")
        return "\n".join(lines)


def make_info(class_names, channels, source, split_labels: dict[str, np.ndarray],
              skipped=None) -> DatasetInfo:
    """The :class:`DatasetInfo` of splits given as their integer labels."""
    k = len(class_names)
    split_counts = {
        s: {c: int(np.sum(lab == i)) for i, c in enumerate(class_names)}
        for s, lab in split_labels.items() if len(lab)
    }
    counts = {c: sum(sc.get(c, 0) for sc in split_counts.values()) for c in class_names}
    train = split_labels.get("train", np.zeros(0, np.int64))
    return DatasetInfo(
        class_names=list(class_names), num_classes=k, counts=counts, split_counts=split_counts,
        class_weights=compute_class_weights(train, k), channels=channels, source=source,
        skipped=list(skipped or []),
    )
