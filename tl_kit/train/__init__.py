"""Training: a backbone + new softmax head, trained stage by stage from a recipe.

```python
learner = tl_kit.finetune(backbone="vgg16", num_classes=3)      # builds, does not train
learner.fit("data/my_photos")                                   # folder, tf.data, arrays, "tfds:..."
learner.evaluate(); learner.predict(["a.jpg"]); learner.export("exports/my_model")
```

``learner``: :class:`Learner` (the orchestration, see its docstring).
"""

from tl_kit.recipes import builtin_recipe, scratch_recipe
from tl_kit.train.learner import (
    EARLY_STOPPING_MIN_VAL,
    SMALL_VAL_SMOOTHING,
    Learner,
    WarmupCosine,
    config_differences,
    finetune,
)

__all__ = ["Learner", "finetune", "WarmupCosine", "scratch_recipe", "builtin_recipe",
           "config_differences", "EARLY_STOPPING_MIN_VAL", "SMALL_VAL_SMOOTHING"]
