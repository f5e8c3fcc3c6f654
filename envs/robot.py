"""A cell's arm with a rigid tool: the :class:`Robot` interface, for any arm of the data.

:class:`Robot` is the interface every cell and task uses: joints, limits, motors, IK, the
TCP, position and torque control. What differs between arms is data, an
:class:`~robocell.envs.arms.ArmSpec` (:mod:`robocell.envs.arms`: the KUKA LBR iiwa 14, the
Franka Emika Panda, the UFactory xArm 6, URDFs from ``pybullet_data``).

The tool is welded into the arm's URDF as a real link (fixed joint to the flange), so a peg
or a torch is part of the multibody, not a soft constraint; its tip is a ``tcp`` link, which
IK and the Jacobian use directly. The generated URDF is cached in the temp directory.
"""

from __future__ import annotations

import operator
import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robocell.envs.arms import IIWA, ArmSpec, arm_spec
from robocell.envs.sim import DATA_PATH, Sim, Vec3
from robocell.util import atomic_write_text, sha256_bytes

TOOL_DOWN = (1.0, 0.0, 0.0, 0.0)  # quaternion (x, y, z, w): tool z-axis pointing down


@dataclass(frozen=True)
class Tool:
    """A rigid tool on the flange: a box or cylinder along the flange z-axis.

    Args:
        name: tool name (used for its link, ``<name>``, and the tip link ``tcp``).
        length_m: length from flange to tip (the TCP).
        size_m: cylinder radius, or box half-width in x and y.
        shape: ``"cylinder"`` or ``"box"``.
        mass_kg: tool mass (gravity compensation and energy see it).
        collision: whether the tool collides.
        rgba: colour.
    """

    name: str
    length_m: float
    size_m: float
    shape: str = "cylinder"
    mass_kg: float = 0.5
    collision: bool = True
    rgba: tuple[float, float, float, float] = (0.8, 0.5, 0.1, 1.0)

    def geometry_xml(self) -> str:
        """URDF geometry element of the tool body."""
        if self.shape == "box":
            side = 2.0 * self.size_m
            return f'<box size="{side} {side} {self.length_m}"/>'
        return f'<cylinder radius="{self.size_m}" length="{self.length_m}"/>'


@dataclass
class JointState:
    """Positions (rad), velocities (rad/s) and the torques to meter (N·m) of the arm."""

    q: np.ndarray
    qd: np.ndarray
    tau: np.ndarray = field(default_factory=lambda: np.zeros(7))


def _arm_urdf(arm: ArmSpec) -> str:
    """The arm's URDF text with absolute mesh paths and without its ``drop_links``."""
    path = Path(DATA_PATH) / arm.urdf
    prefix, folder = arm.mesh_prefix
    text = path.read_text().replace(f'filename="{prefix}', f'filename="{path.parent / folder}/')
    if not arm.drop_links:
        return text
    root = ET.fromstring(text)
    for element in list(root):
        if element.tag == "link":
            links = [element.get("name")]
        elif element.tag == "joint":
            links = [end.get("link") for end in (element.find("parent"), element.find("child"))]
        else:
            continue
        if set(links) & set(arm.drop_links):
            root.remove(element)
    return ET.tostring(root, encoding="unicode")


def _tool_urdf(tool: Tool, arm: ArmSpec) -> str:
    base = _arm_urdf(arm)
    half = tool.length_m / 2.0
    inertia = tool.mass_kg * tool.length_m**2 / 12.0
    collision = (
        f'<collision><origin xyz="0 0 {half}"/><geometry>{tool.geometry_xml()}</geometry>'
        "</collision>"
        if tool.collision
        else ""
    )
    r, g, b, a = tool.rgba
    mount = " ".join(f"{v:g}" for v in arm.mount_xyz_m)
    links = f"""
  <link name="{tool.name}">
    <inertial><origin xyz="0 0 {half}"/><mass value="{tool.mass_kg}"/>
      <inertia ixx="{inertia}" iyy="{inertia}" izz="{inertia / 10}" ixy="0" ixz="0" iyz="0"/>
    </inertial>
    <visual><origin xyz="0 0 {half}"/><geometry>{tool.geometry_xml()}</geometry>
      <material name="{tool.name}_colour"><color rgba="{r} {g} {b} {a}"/></material></visual>
    {collision}
  </link>
  <joint name="{tool.name}_mount" type="fixed">
    <parent link="{arm.flange_link}"/><child link="{tool.name}"/>
    <origin xyz="{mount}"/>
  </joint>
  <link name="tcp">
    <inertial><mass value="0.001"/>
      <inertia ixx="1e-9" iyy="1e-9" izz="1e-9" ixy="0" ixz="0" iyz="0"/></inertial>
  </link>
  <joint name="tcp_joint" type="fixed">
    <parent link="{tool.name}"/><child link="tcp"/><origin xyz="0 0 {tool.length_m}"/>
  </joint>
</robot>"""
    return base.replace("</robot>", links)


def tool_urdf_path(tool: Tool, arm: ArmSpec | str = IIWA) -> str:
    """Path of the arm-with-tool URDF (written once per arm and tool into the temp directory)."""
    arm = arm_spec(arm)
    text = _tool_urdf(tool, arm)
    path = (
        Path(tempfile.gettempdir())
        / "robocell-urdf"
        / f"{arm.name}-{sha256_bytes(text.encode())[:16]}.urdf"
    )
    if not path.exists():
        atomic_write_text(path, text)
    return os.fspath(path)


_SPEED = operator.itemgetter(1)  # fields of a getJointStates row
_MOTOR_TORQUE = operator.itemgetter(3)


def _column(rows: list[tuple], field: operator.itemgetter) -> np.ndarray:
    """(rows, joints) array of one field of raw ``getJointStates`` rows."""
    joints = [joint for row in rows for joint in row]
    return np.fromiter(map(field, joints), float, len(joints)).reshape(len(rows), -1)


class Robot:
    """An arm of :data:`~robocell.envs.arms.ARMS` with a rigid tool, position- or torque-controlled.

    Args:
        sim: the simulation to live in.
        tool: the tool on the flange.
        arm: the arm, an :class:`ArmSpec` or its name in :data:`~robocell.envs.arms.ARMS`.
        base_position: where the robot base stands (m).
        name: body name in the simulation.
    """

    def __init__(
        self,
        sim: Sim,
        tool: Tool,
        arm: ArmSpec | str = IIWA,
        base_position: Vec3 = (0.0, 0.0, 0.0),
        name: str = "robot",
    ) -> None:
        self.arm = arm_spec(arm)
        self.sim = sim
        self.tool = tool
        self.name = name
        self.base_position = tuple(base_position)
        self.n_joints = self.arm.n_joints
        self.home = self.arm.home
        self.urdf_path = tool_urdf_path(tool, self.arm)
        self.max_torque_nm = np.asarray(self.arm.max_torque_nm)
        self.max_speed_rad_s = np.asarray(self.arm.max_speed_rad_s)
        self.torque_control = False
        self.joint_friction_nm = 0.0  # Coulomb friction per joint under torque control
        self._commanded_tau = np.zeros(self.n_joints)
        self._max_torque_neg = -self.max_torque_nm

    def load(self, q: Sequence[float] | None = None) -> None:
        """Create the robot in the (freshly reset) simulation at ``q`` (default: home)."""
        self.sim.load_urdf(self.name, self.urdf_path, self.base_position, fixed_base=True)
        self.sim.exclude_self_pairs(self.name)
        joints = self.sim.joints(self.name)
        self.joint_indices = [j.index for j in joints if j.kind != 4][: self.n_joints]
        self.lower = np.asarray([joints[i].lower for i in self.joint_indices])
        self.upper = np.asarray([joints[i].upper for i in self.joint_indices])
        self.tcp_link = self.sim.link_index(self.name, "tcp")
        self.flange_link = self.sim.link_index(self.name, self.arm.flange_link)
        self._read_joints = list(self.joint_indices)
        self._bind_hot_calls()
        self.restart(q)

    def _bind_hot_calls(self) -> None:
        self._read = self.sim.joint_state_reader(self.name, self._read_joints)
        self._command_torques = self.sim.torque_commander(self.name, self.joint_indices)
        self._reading: tuple = ()
        self._reading_version = self._tcp_version = -1

    def restart(self, q: Sequence[float] | None = None) -> None:
        """Put the loaded arm back as :meth:`load` leaves it: at ``q`` (home), at rest, held.

        Dynamics a task changes on the arm (a link's friction, joint damping) stay as the
        task left them; tasks set theirs at every reset, before the first physics step.
        """
        self.torque_control = False
        self._commanded_tau = np.zeros(self.n_joints)
        self.reset_joints(self.home if q is None else q)

    def reset_joints(self, q: Sequence[float]) -> None:
        """Teleport the arm to ``q`` and hold it there under position control."""
        self.sim.reset_joints(self.name, self.joint_indices, q)
        if not self.torque_control:
            self.set_joint_targets(q)

    # ------------------------------------------------------------------ state
    def read_also(self, joints: Sequence[int]) -> None:
        """Read these joints too (after the arm's, in this order) in :meth:`joint_reading`."""
        extra = [joint for joint in joints if joint not in self._read_joints]
        if extra:
            self._read_joints += extra
            self._bind_hot_calls()

    def joint_reading(self) -> tuple:
        """``getJointStates`` rows of the arm's joints, then of the joints of :meth:`read_also`.

        Read once per state of the world (the simulation's ``state_version``): the env's
        record after a physics step and a controller's read before the next one share it.
        """
        if self._reading_version != self.sim.state_version:
            self._reading = self._read()
            self._reading_version = self.sim.state_version
        return self._reading

    def joint_state(self) -> JointState:
        """Joint positions, velocities and the torques the meter should see.

        Under torque control PyBullet's read-back is stale, so the commanded torques are
        reported; under position control the applied motor torques are read back.
        """
        q, qd, tau = self.sim.joint_states(self.name, self.joint_indices)
        if self.torque_control:
            tau = self._commanded_tau.copy()
        return JointState(q, qd, tau)

    def start_recording(self) -> None:
        """Begin recording joint speeds and metered torques, one row per physics step."""
        self._recorded_states: list[tuple] = []
        self._recorded_tau: list[np.ndarray] = []

    def record(self) -> None:
        """Record the joint state after a physics step (kept raw: this is the hot loop)."""
        self._recorded_states.append(self.joint_reading())
        if self.torque_control:
            self._recorded_tau.append(self._commanded_tau)

    def recorded(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps, joints) arrays of metered torques (N·m) and joint speeds (rad/s).

        Under torque control PyBullet's torque read-back is stale, so the commanded torques
        are metered; under position control the applied motor torques are read back.
        """
        rows, n = self._recorded_states, self.n_joints
        qd = _column(rows, _SPEED)[:, :n]
        if self.torque_control:
            return np.array(self._recorded_tau), qd
        return _column(rows, _MOTOR_TORQUE)[:, :n], qd

    def tcp_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """TCP position (m), orientation, linear (m/s) and angular velocity (rad/s), world.

        Read once per state of the world; the arrays are read-only (they are shared).
        """
        if self._tcp_version != self.sim.state_version:
            state = self.sim.link_pose_velocity(self.name, self.tcp_link)
            for array in state:
                array.flags.writeable = False
            self._tcp, self._tcp_version = state, self.sim.state_version
        return self._tcp

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """TCP position (m) and orientation quaternion in the world."""
        position, orientation, _, _ = self.tcp_state()
        return position, orientation

    # ------------------------------------------------------------------ control
    def ik(
        self, position: Vec3, orientation: Sequence[float] = TOOL_DOWN, iterations: int = 100
    ) -> np.ndarray:
        """Joint positions that put the TCP at the pose, clipped to the joint limits."""
        q = self.sim.inverse_kinematics(
            self.name, self.tcp_link, position, orientation, max_iterations=iterations
        )
        return np.minimum(np.maximum(q[: self.n_joints], self.lower), self.upper)

    def set_joint_targets(self, q: Sequence[float]) -> None:
        """Position control towards ``q`` with the motors' torque limits."""
        self.sim.set_position_targets(self.name, self.joint_indices, q, self.max_torque_nm)

    def track(self, q: Sequence[float], qd: Sequence[float], position_gain: float = 0.3) -> None:
        """Follow a joint trajectory point: position ``q`` with velocity feed-forward ``qd``."""
        self.sim.track_joint_targets(
            self.name, self.joint_indices, q, qd, self.max_torque_nm, position_gain
        )

    def enable_torque_control(self) -> None:
        """Switch the default motors off; from now on :meth:`apply_torques` drives the arm.

        The joints keep ``joint_friction_nm`` of Coulomb friction (0: none).
        """
        self.sim.disable_motors(self.name, self.joint_indices, self.joint_friction_nm)
        self.torque_control = True

    def apply_torques(self, tau: np.ndarray) -> np.ndarray:
        """Command joint torques, clipped to the motor limits; returns what was commanded."""
        # minimum/maximum instead of np.clip: this runs every physics step, 3 µs cheaper.
        tau = np.minimum(np.maximum(tau, self._max_torque_neg), self.max_torque_nm)
        self._command_torques(tau.tolist())
        self._commanded_tau = tau
        return tau

    def jacobian(self, q: Sequence[float]) -> np.ndarray:
        """6 × n geometric Jacobian of the TCP (linear rows first)."""
        lin, ang = self.sim.jacobian(self.name, self.tcp_link, q)
        return np.vstack([lin, ang])

    def gravity_torques(self, q: Sequence[float], qd: Sequence[float]) -> np.ndarray:
        """Torques (N·m) that hold the arm against gravity and Coriolis forces at (q, qd)."""
        return self.sim.inverse_dynamics(self.name, q, qd, [0.0] * self.n_joints)


class KukaIiwa(Robot):
    """The KUKA LBR iiwa 14 with a rigid tool: :class:`Robot` with ``arm="iiwa"``."""

    def __init__(
        self, sim: Sim, tool: Tool, base_position: Vec3 = (0.0, 0.0, 0.0), name: str = "robot"
    ) -> None:
        super().__init__(sim, tool, IIWA, base_position, name)
