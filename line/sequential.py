"""The canary's sequential test: anytime-valid decisions on two streams of production parts.

A canary runs a challenger on a share of a cell's parts next to the champion on the rest;
after every part the line may promote it, roll it back, or go on. Looking after every part is
what a fixed-horizon test forbids, so each comparison here is a **mixture sequential
probability ratio test** (mSPRT; Robbins 1970, Johari, Pekelis & Walsh, "Always valid
inference", Operations Research 2022): for the difference θ of two means, estimated by
θ̂ = x̄_canary − x̄_champion with variance V = s²_c/n_c + s²_h/n_h, and a normal mixture
N(θ₀, τ²) over the alternatives,

    Λ = sqrt(V / (V + τ²)) · exp(τ² (θ̂ − θ₀)² / (2 V (V + τ²))),

and H₀: θ = θ₀ is rejected the first time Λ ≥ 1/α. Under H₀, P(Λ ever reaches 1/α) ≤ α
however often one looks (Λ is a nonnegative martingale; Ville's inequality); with the plug-in
variance this holds asymptotically, which ``bench``-style simulation in the tests checks.
A rejection is read one-sided, by the sign of θ̂ − θ₀, so a test at α/2 per side costs α.

The decision rule of :class:`CanaryTest` (every error level stated, α split in two):

- **promote** when energy per part is lower (mSPRT on the energy difference, θ₀ = 0, rejected
  with θ̂ < 0 at α/2) **and** success is not worse by more than the margin δ (mSPRT on the
  success difference with θ₀ = −δ, rejected with θ̂ > −δ at α/2);
- **roll back** when the canary's energy is higher, or its success lower (θ₀ = 0, rejected
  the other way, each at α/2), or when ``max_parts`` canary parts pass with neither decision
  (the horizon declared in advance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: Parts each side must have before any decision: the variances are estimates, and with
#: fewer the plug-in test errs more often than it says (measured in tests/test_canary.py).
MIN_PARTS = 100


@dataclass
class Stream:
    """Count, mean and sum of squared deviations of one side's values (Welford)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, value: float) -> None:
        """One more value."""
        self.n += 1
        delta = value - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (value - self.mean)

    @property
    def variance(self) -> float:
        """The sample variance (0 before two values)."""
        return self.m2 / (self.n - 1) if self.n > 1 else 0.0


def msprt(difference: float, variance: float, null: float, tau2: float) -> float:
    """The mixture likelihood ratio Λ of H₀: θ = ``null`` for an estimate ``difference`` of θ
    with ``variance``, normal mixture of variance ``tau2`` (module docstring)."""
    if variance <= 0.0:
        raise ValueError("the estimate's variance must be positive")
    total = variance + tau2
    exponent = tau2 * (difference - null) ** 2 / (2.0 * variance * total)
    return math.sqrt(variance / total) * math.exp(min(exponent, 700.0))


def bernoulli_variance(stream: Stream) -> float:
    """A success stream's variance with the rate shrunk towards ½ (k + ½)/(n + 1), so that
    a stream of all successes still has a positive variance."""
    rate = (stream.mean * stream.n + 0.5) / (stream.n + 1)
    return rate * (1.0 - rate)


@dataclass
class CanaryTest:
    """Promotion or rollback of a canary against the champion on the parts since it began."""

    alpha: float = 0.05
    margin: float = 0.02
    """δ: how much lower a success rate may be and still count as no worse."""
    max_parts: int = 2000
    """Canary parts after which, with no decision, the canary is rolled back."""
    energy_tau: float = 0.05
    """The mixture's spread of energy effects, relative to the champion's mean energy."""
    success_tau: float = 0.05
    """The mixture's spread of success-rate effects."""
    sides: dict[str, dict[str, Stream]] = field(
        default_factory=lambda: {
            side: {"success": Stream(), "energy_j": Stream()} for side in ("canary", "champion")
        }
    )

    def add(self, side: str, success: bool, energy_j: float) -> None:
        """One part of ``side`` (``canary`` or ``champion``)."""
        self.sides[side]["success"].add(float(success))
        self.sides[side]["energy_j"].add(energy_j)

    def statistics(self) -> dict[str, float]:
        """Each test's Λ and estimate, the parts on each side (0s before :data:`MIN_PARTS`)."""
        canary, champion = self.sides["canary"], self.sides["champion"]
        stats = {"canary_parts": canary["success"].n, "champion_parts": champion["success"].n}
        if min(canary["success"].n, champion["success"].n) < MIN_PARTS:
            return stats
        success = canary["success"].mean - champion["success"].mean
        success_var = sum(
            bernoulli_variance(s["success"]) / s["success"].n for s in (canary, champion)
        )
        energy = canary["energy_j"].mean - champion["energy_j"].mean
        scale = max(abs(champion["energy_j"].mean), 1e-9)
        energy_var = sum(s["energy_j"].variance / s["energy_j"].n for s in (canary, champion))
        energy_var = max(energy_var, (1e-6 * scale) ** 2)
        tau2_s, tau2_e = self.success_tau**2, (self.energy_tau * scale) ** 2
        return stats | {
            "success_difference": success,
            "energy_difference_j": energy,
            "energy_relative": energy / scale,
            "lambda_energy": msprt(energy, energy_var, 0.0, tau2_e),
            "lambda_success_worse": msprt(success, success_var, 0.0, tau2_s),
            "lambda_success_no_worse": msprt(success, success_var, -self.margin, tau2_s),
        }

    def decision(self) -> tuple[str | None, str]:
        """``("promote" | "rollback", why)``, or ``(None, "")`` to go on."""
        stats = self.statistics()
        bound = 2.0 / self.alpha  # each one-sided test at alpha / 2
        if "lambda_energy" in stats:
            if stats["lambda_energy"] >= bound and stats["energy_difference_j"] > 0:
                return "rollback", f"energy per part higher by {stats['energy_relative']:+.1%}"
            if stats["lambda_success_worse"] >= bound and stats["success_difference"] < 0:
                return "rollback", f"success lower by {-stats['success_difference']:.3f}"
            energy_better = stats["lambda_energy"] >= bound and stats["energy_difference_j"] < 0
            no_worse = (
                stats["lambda_success_no_worse"] >= bound
                and stats["success_difference"] > -self.margin
            )
            if energy_better and no_worse:
                return "promote", (
                    f"energy per part {stats['energy_relative']:+.1%}, success "
                    f"{stats['success_difference']:+.3f} (no worse than -{self.margin})"
                )
        if stats["canary_parts"] >= self.max_parts:
            return "rollback", f"no decision within {self.max_parts} canary parts"
        return None, ""
