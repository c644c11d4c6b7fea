"""Likely label errors by confident learning (Northcutt, Jiang and Chuang, JAIR 2021) on
out-of-fold probabilities of logistic-regression heads trained on pretrained features."""

from __future__ import annotations

import warnings

import numpy as np

FOLDS = 5
C_REG = 10.0  # inverse L2 strength of the head on unit-length features (sklearn's C)


def out_of_fold_probabilities(features: np.ndarray, labels: np.ndarray, num_classes: int, *,
                              folds: int = FOLDS, seed: int = 0, c: float = C_REG) -> np.ndarray:
    """``(N, K)`` probabilities, each row from a multinomial logistic regression (on
    L2-normalised features) that did not see that example: stratified k-fold, k at most
    ``folds`` and at most the largest class count. A class absent from a fold's training
    part gets probability 0 there."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    x = np.asarray(features, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    y = np.asarray(labels, np.int64)
    k = max(2, min(folds, int(np.bincount(y).max())))
    probs = np.zeros((len(y), num_classes))
    # One BLAS thread: these small fits ran 50x slower with two threads on a busy 2-core
    # machine (benchmarks/bench_doctor.py), and gain nothing from more.
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # a class smaller than k: sklearn warns, CL copes
        for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y):
            if len(np.unique(y[tr])) < 2:
                probs[te, y[tr][0]] = 1.0
                continue
            clf = LogisticRegression(C=c, max_iter=2000).fit(x[tr], y[tr])
            probs[np.ix_(te, clf.classes_)] = clf.predict_proba(x[te])
    return probs


def confident_learning(probs: np.ndarray, labels: np.ndarray) -> list[tuple[int, int, float, float]]:
    """Off-diagonal entries of the confident joint: ``(index, suggested, confidence, margin)``.

    Per-class threshold t_j = mean p(j | x) over the examples labelled j (self-confidence);
    an example counts for class j when p(j | x) >= t_j (the most probable such class when
    several pass); it is flagged when that class is not its given label. Ranked by margin
    p(suggested | x) - p(given | x), largest first."""
    y = np.asarray(labels, np.int64)
    k = probs.shape[1]
    thresholds = np.array([probs[y == j, j].mean() if np.any(y == j) else 1.0 for j in range(k)])
    above = probs >= thresholds[None, :] - 1e-12
    masked = np.where(above, probs, -1.0)
    best = masked.argmax(axis=1)
    confident = above.any(axis=1)
    out = []
    for i in np.flatnonzero(confident & (best != y)):
        s = int(best[i])
        out.append((int(i), s, float(probs[i, s]), float(probs[i, s] - probs[i, y[i]])))
    out.sort(key=lambda t: -t[3])
    return out
