"""A six-axis wrist force/torque sensor between the flange and the tool.

The sensor reads PyBullet's reaction wrench of the fixed joint that welds the tool to the
flange: the wrench the arm applies to the tool, in the tool frame, about the joint origin
(the sensor's measuring point). In the air and at rest that is the tool's weight; pressing
on something adds the contact wrench with the opposite sign.

Zeroing: like an industrial sensor, it is tared once per episode with the tool in its
working orientation and out of contact; the tare averages the noisy samples of the settle
period. The tool keeps its orientation (held by the impedance controller to within about
0.01 rad), so its weight stays put in the sensor frame and the tare removes it.

Noise model (seeded from the env's generator): independent zero-mean Gaussian noise on
every axis of every sample, σ = ``force_noise_n`` and ``torque_noise_nm`` — of the order of
the resolution of a compact industrial sensor (ATI Mini45: 1/16 N, 1/752 N·m). The sensor
samples at the physics rate; the reading reported per control period is the mean of that
period's samples (a box anti-aliasing filter). The mean of n independent N(0, σ²) samples
is exactly N(0, σ²/n), so the noise of a reading is drawn once, with σ / √n.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robocell.envs.sim import Sim


@dataclass(frozen=True)
class FTSensorSpec:
    """Noise of the wrist force/torque sensor (σ per axis and per sample).

    Attributes:
        force_noise_n: force noise σ (N).
        torque_noise_nm: torque noise σ (N·m).
    """

    force_noise_n: float = 0.1
    torque_noise_nm: float = 0.003

    def validate(self) -> None:
        """Raise ValueError for a negative noise level."""
        if self.force_noise_n < 0 or self.torque_noise_nm < 0:
            raise ValueError(f"sensor noise must be >= 0, got {self}")


class WristFTSensor:
    """The sensor on the tool's mount joint of a robot body.

    Call :meth:`sample` after every physics step (or :meth:`add_sample` with a reading
    taken by someone else) and :meth:`end_period` once per control period; :meth:`tare`
    zeroes the sensor on the samples taken so far.

    Args:
        sim: the simulation.
        body: the robot's body name.
        joint: index of the fixed joint between flange and tool.
        spec: noise model.
        rng: the env's random generator (seeds the noise).
    """

    def __init__(
        self, sim: Sim, body: str, joint: int, spec: FTSensorSpec, rng: np.random.Generator
    ) -> None:
        spec.validate()
        self.sim, self.body, self.joint = sim, body, joint
        self.rng = rng
        self._sigma = np.array([spec.force_noise_n] * 3 + [spec.torque_noise_nm] * 3)
        self.bias = np.zeros(6)
        self._samples: list[Sequence[float]] = []
        self.reading = np.zeros(6)
        self.peak_force_n = 0.0
        sim.enable_torque_sensor(body, joint)

    def sample(self) -> None:
        """Record the wrench after a physics step (the hot loop: no arithmetic here)."""
        self._samples.append(self.sim.joint_reaction_wrench(self.body, self.joint))

    def add_sample(self, wrench: Sequence[float]) -> None:
        """Record a raw reaction wrench of the sensor joint read elsewhere (same step)."""
        self._samples.append(wrench)

    def tare(self) -> None:
        """Zero the sensor: the bias is the mean of the noisy samples taken so far."""
        samples = self._take()
        self.bias = samples.mean(axis=0) + self._mean_noise(len(samples))
        self.reading = np.zeros(6)
        self.peak_force_n = 0.0

    def end_period(self) -> None:
        """Close a control period: the filtered reading and the period's peak force.

        ``reading`` is the mean of the period's zeroed, noisy samples (sensor frame).
        ``peak_force_n`` is the largest zeroed force magnitude of the period without noise,
        the load the part actually felt.
        """
        zeroed = self._take() - self.bias
        if len(zeroed) == 0:
            return
        forces = zeroed[:, :3]
        self.peak_force_n = float(np.sqrt(np.einsum("ij,ij->i", forces, forces).max()))
        self.reading = zeroed.mean(axis=0) + self._mean_noise(len(zeroed))

    def _take(self) -> np.ndarray:
        samples = np.array(self._samples, dtype=float).reshape(-1, 6)
        self._samples = []
        return samples

    def _mean_noise(self, count: int) -> np.ndarray:
        return self.rng.normal(0.0, 1.0, 6) * self._sigma / np.sqrt(max(count, 1))


def contact_wrench(reading: np.ndarray, sensor_rotation: np.ndarray) -> np.ndarray:
    """Contact wrench on the tool (force, then moment) from a zeroed sensor reading.

    ``sensor_rotation`` turns sensor-frame vectors into the frame wanted (e.g. the world).
    The sensor measures what the arm applies to the tool; in quasi-static contact the
    environment applies the opposite.
    """
    return -(reading.reshape(2, 3) @ sensor_rotation.T).ravel()
