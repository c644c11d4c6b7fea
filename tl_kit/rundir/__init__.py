"""The run directory: one owner of its on-disk format.

``stage``: the files of one training stage (state.json, checkpoints, best weights, history),
written by :func:`tl_kit.distribute.custom_fit`.
"""

from tl_kit.rundir.stage import (
    STATE_FILE,
    check_writable,
    load_best,
    prune,
    read_state,
    save_best,
    write_history_csv,
    write_state,
)

__all__ = ["STATE_FILE", "check_writable", "load_best", "prune", "read_state", "save_best",
           "write_history_csv", "write_state"]
