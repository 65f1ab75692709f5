"""Actor and twin-critic networks, with the paper's small image encoder.

Encoder choice: every network (the actor, and each of the two critics) has its OWN image
encoder, as in softlearning, where each Q-function and the policy built their own
convolutional preprocessor. Reasons: (1) no network's gradient reshapes another's features
(with a shared encoder the actor loss and the critic loss pull on the same filters and one
must be detached by convention); (2) each critic stays an independent estimate, which the
minimum of the twins relies on; (3) the encoder is tiny (two layers of 4 filters), so
separate copies cost little. The two critics' encoders run as one grouped convolution, and
their fully connected layers as one batched matmul (:class:`EnsembleLinear`): no Python loop
over networks.

Pixels arrive as uint8 (B, H, W, C) and are scaled to [-1, 1] inside the encoder. Each conv
layer is 3x3 with "same" padding and ReLU, followed by 2x2 max pooling with stride 2 (the
paper-era softlearning code), so a 32x32 image gives 4 x 8 x 8 = 256 features.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sac_ros.sac.spec import IMAGE_KEY, PROPRIO_KEY, ObsSpec

LOG_STD_MIN = -20.0
LOG_STD_MAX = 2.0
CONV_FILTERS = 4
# Measured crossover: below this batch size the CPU convolutions run faster in NCHW than in
# channels-last (2x at batch 1 on one thread); above it channels-last wins (1.7x at 256).
SMALL_BATCH = 4

Obs = torch.Tensor | dict[str, torch.Tensor]
MemberView = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _param(t: torch.Tensor, detach: bool) -> torch.Tensor:
    return t.detach() if detach else t


class EnsembleLinear(nn.Module):
    """``members`` independent linear layers evaluated in one batched matmul.

    Input (B, in) is shared by all members; input (members, B, in) gives each its own.
    Output (members, B, out). Initialized like ``nn.Linear`` (uniform +-1/sqrt(in)).
    """

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(members, 1, out_features))
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)
        self._member_views: tuple[tuple[int, int], list[MemberView]] | None = None

    def members(self) -> list[MemberView]:
        """Each member's (weight (out, in) as in ``nn.Linear``, its transpose (in, out),
        bias (out,)): views of the stacked parameters without autograd, made once and
        remade only if the parameters were replaced (they are updated in place)."""
        key = (self.weight.data_ptr(), self.bias.data_ptr())
        if self._member_views is None or self._member_views[0] != key:
            weights, biases = self.weight.detach(), self.bias.detach()
            views = [(w.t(), w, b[0]) for w, b in zip(weights, biases, strict=True)]
            self._member_views = (key, views)
        return self._member_views[1]

    def forward(self, x: torch.Tensor, detach: bool = False) -> torch.Tensor:
        weight, bias = _param(self.weight, detach), _param(self.bias, detach)
        if x.dim() == 2:
            # A stride-0 view, no copy. (Measured: faster than one wide addmm whose
            # transposed output makes the later ReLU and its backward strided and slow.)
            x = x.expand(weight.shape[0], -1, -1)
        return torch.baddbmm(bias, x, weight)


class PixelEncoder(nn.Module):
    """The paper's image encoder, ``members`` independent copies in grouped convolutions.

    forward(image uint8 (B, H, W, C)) -> features (members, B, out_features).
    """

    def __init__(self, image_shape: tuple[int, int, int], members: int = 1) -> None:
        super().__init__()
        height, width, channels = image_shape
        self.members = members
        filters = CONV_FILTERS * members
        # The input is shared, so the first layer is one ordinary conv with all members'
        # filters; the second is grouped so each member sees only its own first-layer maps.
        self.conv1 = nn.Conv2d(channels, filters, 3, padding=1)
        self.conv2 = nn.Conv2d(filters, filters, 3, padding=1, groups=members)
        self.out_features = CONV_FILTERS * (height // 4) * (width // 4)

    def forward(self, image: torch.Tensor, detach: bool = False) -> torch.Tensor:
        x = image.permute(0, 3, 1, 2)  # channels-last layout, NCHW shape
        if x.shape[0] < SMALL_BATCH:
            x = x.contiguous()  # tiny batches (a robot's policy) run faster in NCHW
        x = x.float().mul_(2.0 / 255.0).sub_(1.0)
        conv1_w, conv1_b = _param(self.conv1.weight, detach), _param(self.conv1.bias, detach)
        conv2_w, conv2_b = _param(self.conv2.weight, detach), _param(self.conv2.bias, detach)
        # relu(maxpool(x)) == maxpool(relu(x)) (relu is monotone); pooling first makes the
        # relu 4x cheaper.
        x = F.relu(F.max_pool2d(F.conv2d(x, conv1_w, conv1_b, padding=1), 2, 2))
        x = F.conv2d(x, conv2_w, conv2_b, padding=1, groups=self.members)
        x = F.relu(F.max_pool2d(x, 2, 2))
        return x.reshape(x.shape[0], self.members, -1).transpose(0, 1)


class Actor(nn.Module):
    """Gaussian policy head: obs -> (mean, log_std), log_std clamped to [-20, 2]."""

    def __init__(self, spec: ObsSpec, action_dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.spec = spec
        self.action_dim = action_dim
        self.encoder = PixelEncoder(spec.image_shape, 1) if spec.image_shape else None
        width = spec.vector_dim + (self.encoder.out_features if self.encoder else 0)
        layers = []
        for size in hidden:
            layers.append(nn.Linear(width, size))
            width = size
        self.layers = nn.ModuleList(layers)
        self.head = nn.Linear(width, 2 * action_dim)

    def forward(self, obs: Obs) -> tuple[torch.Tensor, torch.Tensor]:
        if self.encoder is not None:
            assert isinstance(obs, dict)
            x = torch.cat([self.encoder(obs[IMAGE_KEY])[0], obs[PROPRIO_KEY]], dim=-1)
        else:
            assert isinstance(obs, torch.Tensor)
            x = obs
        for layer in self.layers:
            x = F.relu(layer(x), inplace=True)
        mean, log_std = self.head(x).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)


class TwinCritic(nn.Module):
    """``members`` (default two) Q networks as one ensemble: (obs, action) -> (members, B)."""

    def __init__(
        self, spec: ObsSpec, action_dim: int, hidden: tuple[int, ...], members: int = 2
    ) -> None:
        super().__init__()
        self.members = members
        self.encoder = PixelEncoder(spec.image_shape, members) if spec.image_shape else None
        width = spec.vector_dim + action_dim + (self.encoder.out_features if self.encoder else 0)
        layers = []
        for size in (*hidden, 1):
            layers.append(EnsembleLinear(members, width, size))
            width = size
        self.layers = nn.ModuleList(layers)

    def forward(self, obs: Obs, action: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """Q values (members, B). ``detach_params`` lets gradients reach ``action`` (and the
        observation) but not the critic's own parameters: the actor loss uses it, so the
        actor's backward pass computes no critic weight gradients."""
        if self.encoder is not None:
            assert isinstance(obs, dict)
            features = self.encoder(obs[IMAGE_KEY], detach_params)
            rest = torch.cat([obs[PROPRIO_KEY], action], dim=-1)
            x = torch.cat([features, rest.expand(self.members, -1, -1)], dim=-1)
        else:
            assert isinstance(obs, torch.Tensor)
            x = torch.cat([obs, action], dim=-1)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, detach_params)
            if i < last:
                x = F.relu(x, inplace=True)  # a fresh matmul output: safe in place
        return x.squeeze(-1)
