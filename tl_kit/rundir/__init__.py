"""The run directory: one owner of its on-disk format.

``run``: :class:`RunDir`, the run directory of a fit (config.toml and its differences,
run.json, history.csv, train.log, metrics.json, plots/, finished stages' weights, overwrite
and the pre-training undo, ``undo``).
``stage``: the files of one training stage (state.json, checkpoints, best weights, history),
written by :func:`tl_kit.distribute.custom_fit`.
"""

from tl_kit.rundir.run import RUN_ARTEFACTS, RUN_STATE, RunDir, config_differences, merge_json
from tl_kit.rundir.stage import (
    STATE_FILE,
    check_writable,
    load_best,
    probe_writable,
    prune,
    read_state,
    save_best,
    write_history_csv,
    write_rows_csv,
    write_state,
)
from tl_kit.rundir.undo import PreTrainingUndo

__all__ = ["RUN_ARTEFACTS", "RUN_STATE", "RunDir", "config_differences", "merge_json",
           "PreTrainingUndo", "STATE_FILE", "check_writable", "load_best", "probe_writable", "prune",
           "read_state", "save_best", "write_history_csv", "write_rows_csv", "write_state"]
