"""robocell: reinforcement learning for industrial robot cells.

Importing ``robocell`` registers the built-in cells with Gymnasium under the ``robocell/``
namespace, so ``gymnasium.make("robocell/WeldSeam-v1")`` works after ``import robocell``;
cells that installed packages declare (entry-point group ``robocell.cells``, see
``robocell.cells``) are registered by ``robocell.envs.discover_cells()``, which every robocell
command runs before it makes a cell.
"""

__version__ = "0.1.0"

import robocell.envs  # noqa: F401  (registers the cells)
