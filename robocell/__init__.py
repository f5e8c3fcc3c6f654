"""robocell: reinforcement learning for industrial robot cells.

Importing ``robocell`` registers every cell with Gymnasium under the ``robocell/``
namespace, so ``gymnasium.make("robocell/WeldSeam-v1")`` works after ``import robocell``.
"""

__version__ = "0.1.0"

import robocell.envs  # noqa: F401  (registers the cells)
