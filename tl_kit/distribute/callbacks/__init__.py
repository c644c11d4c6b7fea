"""tl_kit's callbacks of :func:`tl_kit.distribute.custom_fit`, each with one job.

Each module's docstring says why it is tl_kit's own rather than a Keras callback. In the
order ``custom_fit`` runs them around the user's callbacks:

* ``NonFiniteLossGuard`` (:mod:`.nonfinite`): a NaN/inf epoch resets the model to the last
  checkpoint and raises ``NonFiniteLossError``;
* ``EpochHistory`` (:mod:`.history`): the stage's history, resumed epochs included;
* ``SmoothedEarlyStopping`` (:mod:`.early_stopping`): best epoch, best weights, early stop;
* the user's callbacks;
* ``EpochCheckpoint`` (:mod:`.checkpoint`): checkpoint + state.json on the time policy, resume;
* ``HistoryCSV`` (:mod:`.history`): the history CSV (chief);
* ``EpochProgress`` (:mod:`.progress`): one line per epoch (chief).
"""

from tl_kit.distribute.callbacks.checkpoint import (
    AUTO_CHECKPOINT_SECONDS,
    EpochCheckpoint,
    check_interval,
)
from tl_kit.distribute.callbacks.early_stopping import (
    SmoothedEarlyStopping,
    monitor_mode,
    resolve_monitor,
)
from tl_kit.distribute.callbacks.history import EpochHistory, HistoryCSV
from tl_kit.distribute.callbacks.nonfinite import NonFiniteLossError, NonFiniteLossGuard
from tl_kit.distribute.callbacks.progress import EpochProgress

__all__ = [
    "AUTO_CHECKPOINT_SECONDS", "EpochCheckpoint", "EpochHistory", "EpochProgress", "HistoryCSV",
    "NonFiniteLossError", "NonFiniteLossGuard", "SmoothedEarlyStopping", "check_interval",
    "monitor_mode", "resolve_monitor",
]
