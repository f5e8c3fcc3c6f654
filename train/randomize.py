"""Domain randomisation of a cell's plant parameters during training (``randomize:``)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from robocell.schema import SchemaError

# Mixed into the episode seed, so the plant draws do not repeat the cell's own from that seed.
_STREAM = 0x706C616E74  # "plant"


class PlantRandomization(gym.Wrapper):
    """Draws the named plant parameters uniformly in their ``[low, high]`` every episode.

    A reset with a seed draws from that seed (the same seed, the same plant and episode);
    a reset without one goes on with the generator of the last seeded reset. The draw goes
    through the cell's ``configure``, which checks each name and value (a SchemaError names
    the ``randomize`` entry).
    """

    def __init__(self, env: gym.Env, ranges: dict[str, list[float]]) -> None:
        super().__init__(env)
        cell = env.unwrapped
        sizes = {p.name: p.size for p in getattr(cell, "line_parameters", ())}
        for name, (low, high) in ranges.items():
            if name not in sizes:
                known = ", ".join(sizes) or "none"
                raise SchemaError(f"randomize.{name}", f"not a plant parameter (known: {known})")
            for value in (low, high):
                try:
                    cell.check_line_values(**{name: [value] * sizes[name]})
                except ValueError as exc:
                    raise SchemaError(f"randomize.{name}", str(exc)) from None
        self._ranges = {
            name: (float(low), float(high), sizes[name]) for name, (low, high) in ranges.items()
        }
        self._rng = np.random.default_rng()

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Draw this episode's plant, then reset the cell."""
        seed = kwargs.get("seed")
        if seed is not None:
            self._rng = np.random.default_rng([int(seed), _STREAM])
        values: dict[str, Any] = {}
        for name, (low, high, size) in self._ranges.items():
            draw = self._rng.uniform(low, high, size)
            values[name] = float(draw[0]) if size == 1 else tuple(float(v) for v in draw)
        self.env.unwrapped.configure(**values)
        return self.env.reset(**kwargs)
