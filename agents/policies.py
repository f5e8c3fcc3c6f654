"""robocell's own SB3 policies: the vision cell's pixel-wise pick policy.

:class:`PickMapPolicy` is a PPO ``ActorCriticPolicy`` for a pick over image positions
(``robocell/VisionSort-v1``'s ``Discrete(bins · G · G)`` action, see
:mod:`robocell.envs.vision.pick_grid`). A fully-convolutional network scores every cell of the
image-aligned grid for every bin; the action distribution is the softmax over all of them
and the deterministic action is their arg-max (Zeng et al. 2018, "Learning Synergies
between Pushing and Grasping"; Zeng et al. 2020, "Transporter Networks"). No layer maps
positions through a dense matrix: a part seen anywhere in the image is scored by the same
weights, which is what makes the pick learnable from a few thousand frames on a CPU.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import CategoricalDistribution, Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

STEM_STRIDE = 2  # the trunk works at half the image resolution


class PickMapTrunk(BaseFeaturesExtractor):
    """Image and state → a feature map at half the image resolution (fully convolutional).

    The input stacks the image's channels (scaled to 0–1 by SB3), the state vector
    broadcast as one constant plane per element, and optionally two coordinate planes
    (x and y in [−1, 1], CoordConv) so that the scores may depend on where a part lies
    (e.g. the energy of reaching it). A 5 × 5 stride-2 stem, then 3 × 3 convolutions with
    dilation 1, 2 and 4: each output sees 33 × 33 image pixels, about three parts' width.
    Every convolution is followed by group normalisation (Wu & He 2018; per image, so it
    acts the same in training and inference): without it the part classes (a 3-pixel
    mark, a tint) took ten times as many gradient steps to separate.

    Args:
        observation_space: ``Dict(image=Box(uint8, (C, H, W)), state=Box(float32, (n,)))``.
        width: channels of the feature map.
        coord_channels: add the two coordinate planes.
    """

    def __init__(
        self, observation_space: spaces.Dict, width: int = 32, coord_channels: bool = True
    ) -> None:
        super().__init__(observation_space, features_dim=width)
        channels, height, width_px = observation_space["image"].shape
        state_size = int(math.prod(observation_space["state"].shape))
        planes = channels + state_size + (2 if coord_channels else 0)
        self.net = nn.Sequential(
            *_conv_block(planes, 16, 5, stride=STEM_STRIDE, padding=2),
            *_conv_block(16, width, 3, padding=1),
            *_conv_block(width, width, 3, padding=2, dilation=2),
            *_conv_block(width, width, 3, padding=4, dilation=4),
        )
        self.coord_channels = coord_channels
        rows = (
            torch.linspace(-1.0, 1.0, height).view(1, 1, height, 1).expand(1, 1, height, width_px)
        )
        cols = torch.linspace(-1.0, 1.0, width_px).view(1, 1, 1, width_px).expand_as(rows)
        self.register_buffer("coords", torch.cat([rows, cols], dim=1).contiguous())

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """(batch, width, ⌈H/2⌉, ⌈W/2⌉) features of a batch of preprocessed observations."""
        image = observations["image"]
        batch, _, height, width_px = image.shape
        state = observations["state"].reshape(batch, -1, 1, 1)
        planes = [image, state.expand(-1, -1, height, width_px)]
        if self.coord_channels:
            planes.append(self.coords.expand(batch, -1, -1, -1))
        return self.net(torch.cat(planes, dim=1))


def _conv_block(planes: int, channels: int, kernel: int, **conv: int) -> list[nn.Module]:
    """Convolution, group normalisation (4 channels per group), ReLU."""
    return [
        nn.Conv2d(planes, channels, kernel, **conv),
        nn.GroupNorm(max(1, channels // 4), channels),
        nn.ReLU(),
    ]


class PickHead(nn.Module):
    """Feature map → one score per grid cell and bin, flattened as ``bin, row, col``.

    The score of (cell, bin) is a pick score of the cell plus the log-probability of the
    bin from a per-cell bin classifier: ``s(cell) + log_softmax_bins(b(cell, ·))``. Any
    joint score map can be written so; this form gives the bin choice at a part its own
    gradient (with one softmax over all cells and bins, the wrong bin at a part would only
    be pushed down by the normalisation, in proportion to its tiny probability).

    A transposed convolution with kernel = stride = the upsampling factor gives every
    grid cell under a feature-map position its own learned read-out (sub-pixel
    convolution): scores are not interpolated, so neighbouring cells do not tie.
    """

    def __init__(self, width: int, bins: int, upsample: int) -> None:
        super().__init__()
        self.scores = nn.ConvTranspose2d(width, 1 + bins, kernel_size=upsample, stride=upsample)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, bins · G · G) logits."""
        maps = self.scores(features)
        pick, bins = maps[:, :1], maps[:, 1:]
        return (pick + torch.log_softmax(bins, dim=1)).flatten(1)


class PooledValue(nn.Module):
    """Feature map → state value, through global average and max pooling."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * width, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, 1) values."""
        pooled = torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)
        return self.linear(pooled)


def grid_geometry(
    observation_space: spaces.Dict, action_space: spaces.Discrete, bins: int
) -> tuple[int, int]:
    """(G, upsampling factor) of a ``Discrete(bins · G · G)`` pick over the image."""
    cells, rest = divmod(int(action_space.n), bins)
    side = math.isqrt(cells)
    if rest or side * side != cells:
        raise ValueError(f"{action_space} is not {bins} bins × a square grid")
    _, height, width_px = observation_space["image"].shape
    trunk = math.ceil(height / STEM_STRIDE)
    if height != width_px or side % trunk:
        raise ValueError(
            f"a {side} × {side} grid is not a whole multiple of the {trunk} × {trunk} "
            f"feature map of a {height} × {width_px} image"
        )
    return side, side // trunk


class PickMapPolicy(ActorCriticPolicy):
    """PPO policy whose action logits are a fully-convolutional score map over the image.

    Observation ``Dict(image, state)``; action ``Discrete(bins · G · G)`` with index
    ``bin · G² + row · G + col`` over a grid aligned with the image, G a whole multiple of
    half the image size (VisionSort-v1: 84 × 84 image, G = 168). Logits: the trunk
    (:class:`PickMapTrunk`), then :class:`PickHead`; value: :class:`PooledValue` on the
    same features. The deterministic action is the arg-max of the logits (an ``ArgMax`` in
    the exported ONNX graph).

    Args:
        observation_space, action_space, lr_schedule: as for every SB3 policy.
        width: channels of the trunk's feature map.
        coord_channels: give the trunk two coordinate planes.
        bins: bins the action chooses between.
        **kwargs: the remaining ``ActorCriticPolicy`` arguments (``ortho_init`` has no
            effect: the convolutions keep PyTorch's initialisation and the pick scores
            start small, so the first policy is nearly uniform over the grid).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        width: int = 32,
        coord_channels: bool = True,
        bins: int = 2,
        **kwargs: Any,
    ) -> None:
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"PickMapPolicy needs a Discrete pick action, got {action_space}")
        self.grid_size, self.upsample = grid_geometry(observation_space, action_space, bins)
        self.width, self.coord_channels, self.bins = width, coord_channels, bins
        kwargs["features_extractor_class"] = PickMapTrunk
        kwargs["features_extractor_kwargs"] = {"width": width, "coord_channels": coord_channels}
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        """The score head, the value head and the optimiser (no MLP extractor)."""
        self.action_net = PickHead(self.width, self.bins, self.upsample)
        self.value_net = PooledValue(self.width)
        with torch.no_grad():  # a nearly uniform first pick; the bins keep their init
            self.action_net.scores.weight[:, :1].mul_(0.01)
            self.action_net.scores.bias[:1].zero_()
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(width=self.width, coord_channels=self.coord_channels, bins=self.bins)
        return data

    def logits(self, obs: PyTorchObs) -> torch.Tensor:
        """(batch, bins · G · G) scores of a batch of observations."""
        return self.action_net(self.extract_features(obs))

    def _distribution(self, logits: torch.Tensor) -> CategoricalDistribution:
        return self.action_dist.proba_distribution(action_logits=logits)

    def forward(
        self, obs: PyTorchObs, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Actions, values and log-probabilities of the actions."""
        features = self.extract_features(obs)
        logits = self.action_net(features)
        distribution = self._distribution(logits)
        actions = logits.argmax(dim=1) if deterministic else distribution.sample()
        return actions, self.value_net(features), distribution.log_prob(actions)

    def evaluate_actions(
        self, obs: PyTorchObs, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Values, log-likelihoods of ``actions`` and entropies (PPO's update)."""
        features = self.extract_features(obs)
        distribution = self._distribution(self.action_net(features))
        return self.value_net(features), distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs: PyTorchObs) -> Distribution:
        """The categorical distribution over grid cells and bins."""
        return self._distribution(self.logits(obs))

    def predict_values(self, obs: PyTorchObs) -> torch.Tensor:
        """State values."""
        return self.value_net(self.extract_features(obs))

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> torch.Tensor:
        logits = self.logits(observation)
        if deterministic:
            return logits.argmax(dim=1)
        return self._distribution(logits).sample()
