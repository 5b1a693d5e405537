"""The evaluation protocol (DESIGN section 6): correlations with teacher labels and the Waterloo tests.

The D-, L- and P-tests follow K. Ma et al., "Waterloo Exploration Database: New challenges for image
quality assessment models", IEEE TIP 26(2), 2017, adapted to our manifests:

- D-test: how well scores separate pristine rows from distorted ones, as an AUC (pristine should win);
  broken down by pristine row, each one's share of distorted rows scored below it (their mean is the AUC),
  which shows whether a few sources that are themselves poor make most of the loss; and by degradation kind and
  by level, the AUC of the pristine rows over the distorted rows of each, which shows which degradations and how
  mild a one the model cannot tell from a pristine source.
- L-test: within each list of one content and one degradation kind (with the content's pristine row
  at level 0), the SRCC between score and severity (negated: higher level is worse), averaged over
  lists with at least 3 distinct levels; broken down by degradation kind, as per-distortion SRCC tables
  are in IQA papers.
- P-test: over pairs of distorted rows of one content whose primary labels differ by at least a
  margin, the fraction the model orders as the label does (ties in score count half).

Scores are oriented first (negated for lower-is-better models) so that every figure is higher for a
better model and a good model's SRCC and KRCC are positive.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from common.data.manifest import Item
from common.eval.stats import Correlations, auc, correlations, srcc

DEFAULT_MARGIN = 20.0  # label points on the 0-100 scale: one fifth of the range is a difference nobody disputes
MIN_LEVELS = 3  # an L-test list needs this many distinct levels (the pristine level 0 included)


def orient(scores: np.ndarray, higher_better: bool) -> np.ndarray:
    """Scores as floats, negated when lower is better, so that higher always means better."""
    s = np.asarray(scores, dtype=np.float64)
    return s if higher_better else -s


def label_values(items: Sequence[Item], label: str) -> np.ndarray:
    """One label of every row (NaN where a row lacks it)."""
    return np.array([it.labels.get(label, np.nan) for it in items], dtype=np.float64)


def d_test(items: Sequence[Item], scores: np.ndarray) -> float:
    """AUC of oriented scores for pristine (positive) against distorted rows; NaN without both."""
    pristine = np.array([it.pristine for it in items], dtype=bool)
    return auc(scores[pristine], scores[~pristine])


def d_test_by_content(items: Sequence[Item], scores: np.ndarray) -> dict[str, float]:
    """For each scored pristine row (keyed by its content): the share of scored distorted rows of every content
    that it outscores, ties counting half. With one pristine row per content their mean is :func:`d_test`."""
    finite = np.isfinite(scores)
    distorted = scores[finite & ~np.array([it.pristine for it in items], dtype=bool)]
    if not len(distorted):
        return {}
    return {it.content: float(np.mean(distorted < s) + 0.5 * np.mean(distorted == s))
            for it, s, ok in zip(items, scores, finite) if it.pristine and ok}


def d_test_by(items: Sequence[Item], scores: np.ndarray, part: str) -> dict[str, float]:
    """The D-test AUC of every scored pristine row over the scored distorted rows of each degradation ``part``:
    ``"kind"`` or ``"level"`` (keyed by the level's number as text)."""
    if part not in ("kind", "level"):
        raise ValueError(f"part must be 'kind' or 'level', got {part!r}")
    finite = np.isfinite(scores)
    pristine = scores[finite & np.array([it.pristine for it in items], dtype=bool)]
    if not len(pristine):
        return {}
    groups: dict[str, list[float]] = defaultdict(list)
    for it, s, ok in zip(items, scores, finite):
        if ok and not it.pristine:
            groups[str(getattr(it, part))].append(s)
    return {key: auc(pristine, np.array(vs)) for key, vs in groups.items()}


@dataclass(frozen=True)
class LTest:
    """Mean within-list SRCC with severity, over ``lists`` lists; ``flat`` of them had constant scores;
    ``by_kind``: the mean over the lists of each degradation kind."""

    value: float
    lists: int
    flat: int
    by_kind: dict[str, float] = field(default_factory=dict)


def l_test(items: Sequence[Item], scores: np.ndarray) -> LTest:
    """Mean SRCC between oriented scores and -level over (content, kind) lists with the content's pristine rows.

    Rows without a finite score are left out before counting levels. A list whose scores are all
    equal expresses no order and counts as 0, rather than being dropped (which would flatter a model
    that cannot see a degradation).
    """
    pristine: dict[str, list[int]] = defaultdict(list)
    lists: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        if np.isfinite(scores[i]):
            (pristine[it.content] if it.pristine else lists[(it.content, it.kind)]).append(i)
    values: dict[str, list[float]] = defaultdict(list)
    flat = 0
    for (content, kind), idx in lists.items():
        idx = idx + pristine[content]
        levels = np.array([items[i].level for i in idx], dtype=np.float64)
        if len(np.unique(levels)) < MIN_LEVELS:
            continue
        if np.ptp(scores[idx]) == 0:
            flat += 1
            values[kind].append(0.0)
        else:
            values[kind].append(srcc(scores[idx], -levels))
    every = [v for vs in values.values() for v in vs]
    return LTest(float(np.mean(every)) if every else np.nan, len(every), flat,
                 {kind: float(np.mean(vs)) for kind, vs in sorted(values.items())})


@dataclass(frozen=True)
class PTest:
    """Fraction of ``pairs`` label-discriminable pairs that the model orders as the label does."""

    value: float
    pairs: int


def p_test(items: Sequence[Item], scores: np.ndarray, labels: np.ndarray, margin: float = DEFAULT_MARGIN) -> PTest:
    """Agreement with the label on pairs of distorted rows of one content whose labels differ by >= ``margin``."""
    if not margin > 0:
        raise ValueError(f"the P-test margin must be positive (label points), got {margin}")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        if not it.pristine and np.isfinite(scores[i]) and np.isfinite(labels[i]):
            groups[it.content].append(i)
    agree, total = 0.0, 0
    for idx in groups.values():
        s, y = scores[idx], labels[idx]
        a, b = np.triu_indices(len(idx), k=1)
        dy = y[a] - y[b]
        wide = np.abs(dy) >= margin
        ds = s[a][wide] - s[b][wide]
        agree += np.sum(np.sign(ds) == np.sign(dy[wide])) + 0.5 * np.sum(ds == 0)
        total += int(wide.sum())
    return PTest(float(agree / total) if total else np.nan, total)


def binary_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """AUC of oriented scores separating rows labelled 1 from rows labelled 0 (other rows left out)."""
    return auc(scores[labels == 1], scores[labels == 0])


@dataclass
class Assessment:
    """Every figure of one model on one set of rows, with notes on what is undefined and why."""

    n: int  # rows with a finite score
    corr: Correlations  # with the primary label, over rows that have it
    d_auc: float
    d_by_content: dict[str, float]  # each pristine row's part of the D-test
    d_by_kind: dict[str, float]  # the D-test over the distorted rows of each kind
    d_by_level: dict[str, float]  # ... and of each level
    l: LTest
    p: PTest
    binary: dict[str, float] = field(default_factory=dict)  # AUC per binary label
    label_srcc: dict[str, float] = field(default_factory=dict)  # SRCC with each other quality label
    notes: list[str] = field(default_factory=list)


def assess(items: Sequence[Item], scores: np.ndarray, higher_better: bool, label: str,
           binary: Sequence[str] = (), others: Sequence[str] = (), margin: float = DEFAULT_MARGIN) -> Assessment:
    """Correlations with ``label`` and the D/L/P tests for raw ``scores`` (NaN: not scored) of ``items``.

    ``binary`` labels get an AUC each, ``others`` (further quality labels) an SRCC each.
    """
    if len(scores) != len(items):
        raise ValueError(f"{len(scores)} scores for {len(items)} rows")
    s = orient(scores, higher_better)
    y = label_values(items, label)
    res = Assessment(int(np.isfinite(s).sum()), correlations(s, y), d_test(items, s), d_test_by_content(items, s),
                     d_test_by(items, s, "kind"), d_test_by(items, s, "level"), l_test(items, s),
                     p_test(items, s, y, margin))
    res.binary = {name: binary_auc(s, label_values(items, name)) for name in binary}
    res.label_srcc = {name: srcc(s, label_values(items, name)) for name in others}
    notes = res.notes
    if res.corr.note:
        notes.append(f"correlations with {label}: {res.corr.note}")
    elif res.corr.mapping == "linear":
        notes.append("PLCC/RMSE after a linear map (too few items for the logistic, or its fit failed)")
    if np.isnan(res.d_auc):
        notes.append("D-test: needs scored pristine and distorted rows")
    if res.l.lists == 0:
        notes.append(f"L-test: no (content, kind) list with {MIN_LEVELS} or more scored levels")
    elif res.l.flat:
        notes.append(f"L-test: {res.l.flat} of {res.l.lists} lists had constant scores and count as 0")
    if res.p.pairs == 0:
        notes.append(f"P-test: no pair of distorted rows of one content whose {label} differs by {margin:g} or more")
    notes += [f"AUC {name}: needs scored rows labelled 1 and 0" for name, v in res.binary.items() if np.isnan(v)]
    notes += [f"SRCC {name}: undefined" for name, v in res.label_srcc.items() if np.isnan(v)]
    return res
