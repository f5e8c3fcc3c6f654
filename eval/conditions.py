"""Operating conditions of a benchmark spec: buckets of a per-episode condition metric.

Each cell reports the randomised conditions of an episode in its ``episode_metrics`` (the
weld cell's ``seam_shape_index`` and ``calibration_error_mm``, the peg cell's
``position_error_mm``, …; names and units in each env's docstring). A spec's ``conditions``
name buckets of such a metric; the certificate then records success and energy per bucket
(the robustness table), and a bucket may carry criteria of its own that are tested on its
episodes alone, at the same α/m as every other criterion.

A bucket is either one value (``equals``, e.g. a categorical index) or the half-open range
``low <= value < high`` (either end may be left open). The buckets of one condition may not
overlap, so an episode lands in at most one; an episode whose value is missing or in no bucket
is counted as outside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from robocell.schema import SchemaError


@dataclass
class BucketCriterion:
    """A criterion required of one bucket's episodes alone.

    Attributes:
        criterion: the name of one of the spec's criteria; its event (``metric op value``,
            ``if_missing``) is tested on the bucket's episodes.
        p0: the probability the event must have in this bucket; PASS iff the one-sided
            Clopper–Pearson lower bound at α/m on the bucket's k of n is ≥ p0.
    """

    criterion: str
    p0: float


@dataclass
class Bucket:
    """One bucket of a condition: a value (``equals``) or a range ``[low, high)``.

    Attributes:
        name: shown in the robustness table, e.g. ``s_curve`` or ``2-3 mm``.
        equals: the metric's value in this bucket (for categorical conditions).
        low: inclusive lower end of the range; ``null``: unbounded below.
        high: exclusive upper end of the range; ``null``: unbounded above.
        criteria: criteria required of this bucket's episodes alone.
    """

    name: str
    equals: float | None = None
    low: float | None = None
    high: float | None = None
    criteria: list[BucketCriterion] = field(default_factory=list)

    def contains(self, value: float | None) -> bool:
        """Whether an episode's condition value falls into this bucket (missing/NaN: no)."""
        if value is None or not math.isfinite(value):
            return False
        if self.equals is not None:
            return value == self.equals
        above = self.low is None or value >= self.low
        return above and (self.high is None or value < self.high)

    def interval(self) -> tuple[float, float]:
        """The bucket as a closed-open interval (``equals``: a single point)."""
        if self.equals is not None:
            return self.equals, self.equals
        return (-math.inf if self.low is None else self.low), (
            math.inf if self.high is None else self.high
        )

    def rule(self) -> str:
        """The bucket's rule as text, e.g. ``== 2`` or ``[1, 2)``."""
        if self.equals is not None:
            return f"== {self.equals:g}"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"[{low}, {high})"


@dataclass
class Condition:
    """A per-episode condition metric and its buckets.

    Attributes:
        name: short identifier, e.g. ``seam_shape``.
        metric: key of ``episode_metrics`` holding the episode's condition value.
        buckets: at least one bucket; buckets may not overlap.
        unit: unit of the metric, for the report.
        description: what the condition is, for the report (e.g. the meaning of an index).
    """

    name: str
    metric: str
    buckets: list[Bucket]
    unit: str = ""
    description: str = ""


def check_conditions(conditions: list[Condition], criterion_names: list[str]) -> None:
    """Unique names, well-formed non-overlapping buckets, bucket criteria naming criteria."""
    check_unique_names("conditions", [c.name for c in conditions])
    for i, condition in enumerate(conditions):
        where = f"conditions[{i}]"
        if not condition.buckets:
            raise SchemaError(f"{where}.buckets", "at least one bucket is needed")
        check_unique_names(f"{where}.buckets", [b.name for b in condition.buckets])
        for j, bucket in enumerate(condition.buckets):
            _check_bucket(f"{where}.buckets[{j}]", bucket, criterion_names)
        _check_no_overlap(f"{where}.buckets", condition.buckets)


def bucket_criteria(conditions: list[Condition]) -> list[tuple[Condition, Bucket, BucketCriterion]]:
    """Every bucket criterion with its condition and bucket, in spec order."""
    return [
        (condition, bucket, required)
        for condition in conditions
        for bucket in condition.buckets
        for required in bucket.criteria
    ]


def _check_bucket(where: str, bucket: Bucket, criterion_names: list[str]) -> None:
    has_range = bucket.low is not None or bucket.high is not None
    if bucket.equals is not None and has_range:
        raise SchemaError(where, "give either equals or low/high, not both")
    if bucket.equals is None and not has_range:
        raise SchemaError(where, "give equals, or low and/or high")
    for name, value in (("equals", bucket.equals), ("low", bucket.low), ("high", bucket.high)):
        if value is not None and not math.isfinite(value):
            raise SchemaError(f"{where}.{name}", f"must be finite, got {value}")
    if bucket.low is not None and bucket.high is not None and bucket.low >= bucket.high:
        raise SchemaError(where, f"low ({bucket.low:g}) must be below high ({bucket.high:g})")
    for k, required in enumerate(bucket.criteria):
        if required.criterion not in criterion_names:
            raise SchemaError(
                f"{where}.criteria[{k}].criterion",
                f"unknown criterion {required.criterion!r} (known: {', '.join(criterion_names)})",
            )
        if not 0.0 < required.p0 < 1.0:
            raise SchemaError(f"{where}.criteria[{k}].p0", f"must be in (0, 1), got {required.p0}")


def _check_no_overlap(where: str, buckets: list[Bucket]) -> None:
    for i, first in enumerate(buckets):
        for second in buckets[i + 1 :]:
            if _overlap(first, second):
                raise SchemaError(where, f"buckets {first.name!r} and {second.name!r} overlap")


def _overlap(a: Bucket, b: Bucket) -> bool:
    if a.equals is not None:
        return b.contains(a.equals)
    if b.equals is not None:
        return a.contains(b.equals)
    (a_low, a_high), (b_low, b_high) = a.interval(), b.interval()
    return a_low < b_high and b_low < a_high


def check_unique_names(where: str, names: list[str]) -> None:
    """Refuse a repeated name, naming the field and the name."""
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SchemaError(where, f"duplicate name {duplicates[0]!r}")
