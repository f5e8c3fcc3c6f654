"""The welding cell's reward (``robocell/WeldSeam-v1``): process terms, an abort penalty and
potential-based shaping.

What counts as a good weld and what counts as success are the process model's
(:mod:`robocell.envs.weld.process`) and the task's; this module only scores them. Two rules make the
reward learnable without changing what it asks for:

1. **No ending pays.** A crash into the plate or losing the seam ends the episode with
   ``abort_penalty`` (−1): worse than any weld (a successful one returns +9 or more), and worse
   than waiting out the 45 s time limit with the arc off (≈ −0.3 of standby energy). There is
   no per-step cost apart from energy and defects, so shortening an episode saves nothing
   else. The penalty is kept small on purpose: at −10 a policy learning from scratch fled
   upwards and backwards from the plate before it ever struck an arc.
2. **Shaping is potential-based** (Ng, Harada & Russell 1999): F = γ·Φ(s′) − Φ(s) with the
   agent's γ, and Φ(s′) = 0 when s′ is terminal (crash, lost, or past the seam end), so the
   γ-discounted shaping of an episode sums to γᵀ·Φ(s_T) − Φ(s_0) whatever the policy did
   in between, and the optimal policy is that of the unshaped reward. A time-limit
   truncation is not terminal: its step keeps Φ(s′).

Φ is the sum of four potentials, each in [0, ``shaping_weight``] and computed from the true
state (real plate pose, not the sensor), from closeness scores of the torch to the welding
procedure, ``q(e, cap) = 1 − min(|e|, cap) / cap``: the standoff and the lateral offset each
on their own, the travel speed times the standoff's score (travel once at welding height, as
a welder does), and the arc — burning (1) or not (0) — times the product of the three, so
striking the arc where it would weld good raises Φ and burning it elsewhere does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from robocell.envs.weld.process import WeldProcessSpec, WeldStep

REWARD_TERMS = (
    "weld_good",
    "weld_defect",
    "success",
    "abort",
    "shaping_standoff",
    "shaping_lateral",
    "shaping_speed",
    "shaping_arc",
)
SHAPING_TERMS = REWARD_TERMS[4:]


@dataclass(frozen=True)
class WeldRewardSpec:
    """Weights of the welding cell's reward; reward units are dimensionless.

    Attributes:
        good_per_mm: per mm of seam welded good (1/mm).
        defect_per_mm: per mm of defective weld (1/mm): a defect costs what the same
            millimetre would have earned welded good (v0 charged twice that, which made the arc
            cost more than it could earn while a policy still explored).
        success_bonus: once, on the last step of a successful episode.
        abort_penalty: once, on a crash (standoff < 2 mm) or when the seam is lost (more than
            40 mm sideways or 80 mm up).
        gamma: γ of the shaping F = γ·Φ(s′) − Φ(s); must equal the learning algorithm's γ.
        shaping_weight: scales every potential (0 switches shaping off).
        standoff_cap_mm, lateral_cap_mm, speed_cap_mm_s: the error at which a closeness score
            reaches 0 (the standoff's 25 mm reaches from the plate to 37 mm, above the 25 mm
            start, so a torch that drifts up is still pulled back).
    """

    good_per_mm: float = 0.1
    defect_per_mm: float = 0.1
    success_bonus: float = 10.0
    abort_penalty: float = 1.0
    gamma: float = 0.99
    shaping_weight: float = 1.0
    standoff_cap_mm: float = 25.0
    lateral_cap_mm: float = 10.0
    speed_cap_mm_s: float = 9.0

    def validate(self) -> None:
        """Range checks (raise ValueError naming the argument)."""
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if self.shaping_weight < 0.0:
            raise ValueError(f"shaping_weight must be >= 0, got {self.shaping_weight}")
        if self.abort_penalty < 0.0:
            raise ValueError(f"abort_penalty must be >= 0, got {self.abort_penalty}")


@dataclass(frozen=True)
class TorchState:
    """What the potential looks at: the torch relative to the real seam."""

    standoff_mm: float
    """Height of the torch above the real plate surface."""
    lateral_mm: float
    """Offset of the torch from the real seam (signed)."""
    travel_speed_mm_s: float
    """Speed along the real seam over the last step (signed: backwards < 0)."""
    arc_on: bool
    """Whether the arc burns."""


def closeness(error: float, cap: float) -> float:
    """``1 − min(|error|, cap) / cap``: 1 on target, 0 at ``cap`` and beyond."""
    return 1.0 - min(abs(error), cap) / cap


def potentials(
    state: TorchState, spec: WeldRewardSpec, process: WeldProcessSpec
) -> dict[str, float]:
    """Φ per shaping term (each in [0, shaping_weight]); Φ(s) is their sum."""
    band_low, band_high = process.speed_band_mm_s
    standoff = closeness(state.standoff_mm - process.standoff_mm, spec.standoff_cap_mm)
    lateral = closeness(state.lateral_mm, spec.lateral_cap_mm)
    speed = closeness(state.travel_speed_mm_s - 0.5 * (band_low + band_high), spec.speed_cap_mm_s)
    w = spec.shaping_weight
    return {
        "shaping_standoff": w * standoff,
        "shaping_lateral": w * lateral,
        "shaping_speed": w * standoff * speed,
        "shaping_arc": w * float(state.arc_on) * standoff * lateral * speed,
    }


TERMINAL_POTENTIALS = dict.fromkeys(SHAPING_TERMS, 0.0)


def shaping(before: dict[str, float], after: dict[str, float], gamma: float) -> dict[str, float]:
    """F = γ·Φ(s′) − Φ(s) per term; pass :data:`TERMINAL_POTENTIALS` as ``after`` at the end."""
    return {name: gamma * after[name] - before[name] for name in SHAPING_TERMS}


def process_terms(
    step: WeldStep, spec: WeldRewardSpec, success_end: bool, aborted: bool
) -> dict[str, float]:
    """The non-shaping terms of one step."""
    return {
        "weld_good": spec.good_per_mm * step.good_mm,
        "weld_defect": -spec.defect_per_mm * step.defect_mm,
        "success": spec.success_bonus if success_end else 0.0,
        "abort": -spec.abort_penalty if aborted else 0.0,
    }
