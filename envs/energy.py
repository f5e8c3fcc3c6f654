"""Electrical energy of a robot cell, metered per physics step.

For joint i with torque τ_i (N·m) and speed q̇_i (rad/s), the drive draws

    P_i = max(τ_i · q̇_i, 0) / η  +  k_cu · τ_i²

mechanical power over the drive-train efficiency (no regeneration: braking power is
dissipated, not returned) plus copper loss in the windings. The controller draws a constant
standby power, and tools (welding arc, suction pump) add their own electrical power while on.
Energy per physics step is power × dt; ``info["energy_j"]`` is the sum over one env step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EnergyConstants:
    """Electrical model constants, SI units.

    Attributes:
        drive_efficiency: motor + gearbox + inverter efficiency η (dimensionless). Assumed
            0.85: servomotors are typically 85–92 % efficient and harmonic gearing 70–90 %.
        copper_loss_w_per_nm2: copper-loss coefficient k_cu in W/(N·m)², an "Ω-equivalent"
            R / k_t² referred to the joint. 0.01 makes holding the iiwa still in its home
            posture cost about 9 W of copper loss.
        standby_w: controller electronics and brake release while the arm is powered (W).
            Assumed 20 W, the order of a compact cobot controller at idle.
        arc_power_w: welding arc power (W) while the arc burns: short-circuit GMAW on thin
            steel at 18 V × 120 A ≈ 2.2 kW.
        arc_efficiency: thermal efficiency of the arc used for heat input (0.8 for GMAW,
            the factor EN 1011-1 gives for metal-arc processes).
        suction_pump_w: electric vacuum pump of a suction gripper while on (W). Assumed 25 W,
            the range of small diaphragm pumps (15–40 W).
    """

    drive_efficiency: float = 0.85
    copper_loss_w_per_nm2: float = 0.01
    standby_w: float = 20.0
    arc_power_w: float = 2160.0
    arc_efficiency: float = 0.8
    suction_pump_w: float = 25.0


def drive_power_w(
    tau_nm: np.ndarray, qd_rad_s: np.ndarray, constants: EnergyConstants
) -> np.ndarray:
    """Electrical power (W) of all joint drives; rows of (…, n_joints) arrays → (…,) powers."""
    mechanical = np.maximum(tau_nm * qd_rad_s, 0.0).sum(axis=-1) / constants.drive_efficiency
    copper = constants.copper_loss_w_per_nm2 * np.square(tau_nm).sum(axis=-1)
    return mechanical + copper


class EnergyMeter:
    """Integrates electrical energy over physics steps.

    Call :meth:`add_steps` with the physics steps of each env step;
    :meth:`take_step_energy_j` returns and clears what accumulated since the last env step,
    while :attr:`total_j` keeps the episode's total.
    """

    def __init__(self, constants: EnergyConstants | None = None) -> None:
        self.constants = constants or EnergyConstants()
        self.total_j = 0.0
        self.tool_total_j = 0.0
        self._pending_j = 0.0

    def reset(self) -> None:
        """Start a new episode."""
        self.total_j = 0.0
        self.tool_total_j = 0.0
        self._pending_j = 0.0

    def add_steps(
        self, tau_nm: np.ndarray, qd_rad_s: np.ndarray, tool_power_w: np.ndarray, dt_s: float
    ) -> float:
        """Meter consecutive physics steps of ``dt_s`` seconds each; returns their energy (J).

        ``tau_nm`` and ``qd_rad_s`` are (steps, joints) arrays, ``tool_power_w`` is (steps,).
        """
        power = drive_power_w(tau_nm, qd_rad_s, self.constants) + self.constants.standby_w
        joules = float((power + tool_power_w).sum() * dt_s)
        self._pending_j += joules
        self.total_j += joules
        self.tool_total_j += float(tool_power_w.sum() * dt_s)
        return joules

    def take_step_energy_j(self) -> float:
        """Energy (J) since the previous call; resets the per-step accumulator."""
        joules, self._pending_j = self._pending_j, 0.0
        return joules
