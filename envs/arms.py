"""The arms a cell can carry, as data: URDF, joints, motors, posture, tool mount, energy.

:data:`ARMS` holds an :class:`ArmSpec` per arm (the KUKA LBR iiwa 14, the Franka Emika
Panda, the UFactory xArm 6, all from ``pybullet_data``), with the data sheet each figure
comes from; :class:`~robocell.envs.robot.Robot` builds and drives any of them.
:func:`require_arm` is how a cell refuses an arm it cannot work with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robocell.envs.energy import EnergyConstants

# LBR iiwa 14 R820 data sheet (KUKA, 2016): max joint torques (N·m) and speeds (deg/s).
IIWA_MAX_TORQUE_NM = (320.0, 320.0, 176.0, 176.0, 110.0, 40.0, 40.0)
IIWA_MAX_SPEED_RAD_S = tuple(np.deg2rad((85.0, 85.0, 100.0, 75.0, 130.0, 135.0, 135.0)))
# A tool-down posture in front of the robot, used as IK rest pose and start.
IIWA_HOME = (0.0, 0.55, 0.0, -1.45, 0.0, 1.15, 0.0)
# Franka Emika, "Datasheet Robot Arm & Control" (Panda, 2019) and the limits table of the
# Franka Control Interface documentation: max joint torques (N·m) and speeds (rad/s). The
# URDF's effort and velocity limits are the same numbers (tests/test_robots.py checks).
PANDA_MAX_TORQUE_NM = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)
PANDA_MAX_SPEED_RAD_S = (2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61)
# Max joint accelerations (rad/s², the same FCI limits table). KUKA and UFactory publish none.
PANDA_MAX_ACCEL_RAD_S2 = (15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0)
PANDA_HOME = (0.0, -0.02, 0.0, -1.99, 0.0, 1.97, 0.0)
# UFactory xArm 6: max joint speed 180 °/s (UFactory, xArm user manual, specifications; the
# same in its servo-mode guide). UFactory publishes no per-joint torques; these are the
# effort limits of UFactory's own model (xarm_ros ``xarm6_robot.urdf``, 50/50/32/32/32/20).
XARM6_MAX_TORQUE_NM = (50.0, 50.0, 32.0, 32.0, 32.0, 20.0)
XARM6_MAX_SPEED_RAD_S = (np.pi,) * 6
XARM6_HOME = (0.0, 0.26, -1.72, 0.0, 1.46, 0.0)


@dataclass(frozen=True)
class ArmSpec:
    """One arm model: its URDF, joints, motors, posture, tool mount and energy constants.

    Attributes:
        name: the arm's key in :data:`ARMS` (what a cell's ``robot=`` takes).
        title: maker and model.
        urdf: URDF path relative to ``pybullet_data``.
        mesh_prefix: how the URDF's mesh file names start, and the folder (relative to the
            URDF's) it stands for: the generated URDF uses absolute mesh paths.
        flange_link: the link the tool is welded to.
        mount_xyz_m: the tool's origin in the flange link's frame (m).
        max_torque_nm: rated (maximum) joint torques, data sheet (N·m).
        max_speed_rad_s: maximum joint speeds, data sheet (rad/s).
        max_accel_rad_s2: maximum joint accelerations, data sheet (rad/s²), or None where
            the maker publishes none.
        home: a tool-down posture in front of the robot (rad): IK seed and start.
        home_tool_yaw_rad: the tool frame's yaw at home (rad; tool down, x-axis forward at 0).
        reach_m: the maker's reach, base axis to flange (m).
        energy: the drives' constants (efficiency, copper loss, standby); tools' keep the
            defaults.
        drop_links: links of the URDF left out with their joints (a hand, its fingers).
        licence: the licence of the model's URDF and meshes.
    """

    name: str
    title: str
    urdf: str
    mesh_prefix: tuple[str, str]
    flange_link: str
    mount_xyz_m: tuple[float, float, float]
    max_torque_nm: tuple[float, ...]
    max_speed_rad_s: tuple[float, ...]
    home: tuple[float, ...]
    home_tool_yaw_rad: float
    reach_m: float
    energy: EnergyConstants
    drop_links: tuple[str, ...] = ()
    licence: str = ""
    max_accel_rad_s2: tuple[float, ...] | None = None

    @property
    def n_joints(self) -> int:
        """Number of the arm's actuated joints."""
        return len(self.home)


IIWA = ArmSpec(
    name="iiwa",
    title="KUKA LBR iiwa 14 R820",
    urdf="kuka_iiwa/model.urdf",
    mesh_prefix=("meshes/", "meshes"),
    flange_link="lbr_iiwa_link_7",
    mount_xyz_m=(0.0, 0.0, 0.045),
    max_torque_nm=IIWA_MAX_TORQUE_NM,
    max_speed_rad_s=IIWA_MAX_SPEED_RAD_S,
    home=IIWA_HOME,
    home_tool_yaw_rad=np.pi,
    reach_m=0.82,
    energy=EnergyConstants(),
    licence="zlib (pybullet_data, Bullet Physics)",
)
PANDA = ArmSpec(
    name="panda",
    title="Franka Emika Panda",
    urdf="franka_panda/panda.urdf",
    mesh_prefix=("package://meshes/", "meshes"),
    flange_link="panda_link8",
    mount_xyz_m=(0.0, 0.0, 0.0),
    max_torque_nm=PANDA_MAX_TORQUE_NM,
    max_speed_rad_s=PANDA_MAX_SPEED_RAD_S,
    home=PANDA_HOME,
    home_tool_yaw_rad=0.0,
    reach_m=0.855,
    energy=EnergyConstants(),
    drop_links=("panda_hand", "panda_leftfinger", "panda_rightfinger", "panda_grasptarget"),
    licence="Apache-2.0 (franka_panda/LICENSE.txt)",
    max_accel_rad_s2=PANDA_MAX_ACCEL_RAD_S2,
)
XARM6 = ArmSpec(
    name="xarm6",
    title="UFactory xArm 6",
    urdf="xarm/xarm6_robot.urdf",
    mesh_prefix=("package://xarm_description/meshes/", "xarm_description/meshes"),
    flange_link="link6",
    mount_xyz_m=(0.0, 0.0, 0.0),
    max_torque_nm=XARM6_MAX_TORQUE_NM,
    max_speed_rad_s=XARM6_MAX_SPEED_RAD_S,
    home=XARM6_HOME,
    home_tool_yaw_rad=0.0,
    reach_m=0.7,
    energy=EnergyConstants(),
    drop_links=("world",),  # a massless root: the base link is the root
    licence="BSD-3-Clause (UFactory xarm_ros, where pybullet_data's copy comes from)",
)
ARMS: dict[str, ArmSpec] = {arm.name: arm for arm in (IIWA, PANDA, XARM6)}


def arm_spec(arm: ArmSpec | str) -> ArmSpec:
    """The :class:`ArmSpec` of an arm or its name; ValueError naming the known arms."""
    if isinstance(arm, ArmSpec):
        return arm
    if arm not in ARMS:
        raise ValueError(f"robot must be one of {sorted(ARMS)}, got {arm!r}")
    return ARMS[arm]


def require_arm(arm: ArmSpec, cell: str, min_reach_m: float = 0.0, min_joints: int = 0) -> None:
    """ValueError naming the cell, the arm and why, where the arm cannot serve the cell.

    Args:
        arm: the arm asked for.
        cell: the cell's env id, for the message.
        min_reach_m: the reach (data sheet, base axis to flange) the cell's workspace needs.
        min_joints: the joints the cell's controller needs (7: a null space for the elbow).
    """
    if arm.reach_m < min_reach_m:
        raise ValueError(
            f"{cell} cannot run with robot={arm.name!r}: the {arm.title} reaches "
            f"{arm.reach_m:.3f} m and the cell's workspace needs {min_reach_m:.3f} m"
        )
    if arm.n_joints < min_joints:
        raise ValueError(
            f"{cell} cannot run with robot={arm.name!r}: the {arm.title} has {arm.n_joints} "
            f"joints and the cell's controller needs {min_joints}"
        )
