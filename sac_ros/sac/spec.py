"""Observation layouts the learner understands, and the checks every observation passes.

Two layouts exist:

* ``vector``: one float vector of ``vector_dim`` entries (state-based tasks, Minitaur).
* ``pixels``: a dict ``{"image": uint8 (H, W, C), "proprio": float (vector_dim,)}``
  (the D'Claw valve from 32x32 camera images plus finger joint readings).

An :class:`ObsSpec` travels inside policy weights and checkpoints (``to_json``), so a
policy node can refuse weights trained for another observation layout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from sac_ros.sac.untrusted import loads

# A raw observation as the environment or a ROS message gives it.
RawObs = np.ndarray | dict[str, np.ndarray]

IMAGE_KEY = "image"
PROPRIO_KEY = "proprio"


def _whole(value: object) -> int:
    """An int from an int (or a float with an integral value, as JSON may carry it)."""
    if isinstance(value, bool):
        raise TypeError(f"{value!r} is not a number")
    number = int(value)  # type: ignore[call-overload]
    if number != value:
        raise ValueError(f"{value!r} is not a whole number")
    return number


@dataclass(frozen=True)
class ObsSpec:
    """The shape of one observation. Use :meth:`vector` or :meth:`pixels` to build one."""

    vector_dim: int
    image_shape: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.vector_dim, (int, np.integer)) or isinstance(self.vector_dim, bool):
            raise ValueError(f"vector_dim must be an int, got {self.vector_dim!r}")
        object.__setattr__(self, "vector_dim", int(self.vector_dim))
        if self.image_shape is None:
            if self.vector_dim < 1:
                raise ValueError(f"a vector observation needs dim >= 1, got {self.vector_dim}")
            return
        if self.vector_dim < 0:
            raise ValueError(f"proprio_dim must be >= 0, got {self.vector_dim}")
        try:
            shape = tuple(_whole(s) for s in self.image_shape)
        except (TypeError, ValueError, OverflowError) as err:
            raise ValueError(
                f"image_shape must be 3 whole numbers, got {self.image_shape!r}"
            ) from err
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"image_shape must be (height, width, channels) > 0, got {shape}")
        if shape[0] < 4 or shape[1] < 4:
            raise ValueError(f"images must be at least 4x4 for the two pooling stages, got {shape}")
        object.__setattr__(self, "image_shape", shape)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def vector(cls, dim: int) -> ObsSpec:
        return cls(vector_dim=dim)

    @classmethod
    def pixels(
        cls, image_shape: tuple[int, int, int] = (32, 32, 3), proprio_dim: int = 0
    ) -> ObsSpec:
        return cls(vector_dim=proprio_dim, image_shape=tuple(image_shape))  # type: ignore[arg-type]

    @classmethod
    def from_space(cls, space: Any) -> ObsSpec:
        """Box(n,) -> vector; Dict{"image": uint8 Box(H, W, C), "proprio": Box(n,)} -> pixels."""
        from gymnasium import spaces

        if isinstance(space, spaces.Box):
            if len(space.shape) != 1:
                raise ValueError(f"a Box observation space must be 1-D, got shape {space.shape}")
            return cls.vector(space.shape[0])
        if isinstance(space, spaces.Dict):
            keys = set(space.spaces)
            if keys != {IMAGE_KEY, PROPRIO_KEY}:
                raise ValueError(f"a Dict observation space needs image and proprio, got {keys}")
            image, proprio = space.spaces[IMAGE_KEY], space.spaces[PROPRIO_KEY]
            is_image = isinstance(image, spaces.Box) and len(image.shape) == 3
            if not is_image or image.dtype != np.uint8:
                raise ValueError(f"the image space must be a uint8 Box (H, W, C), got {image}")
            if not isinstance(proprio, spaces.Box) or len(proprio.shape) != 1:
                raise ValueError(f"the proprio space must be a 1-D Box, got {proprio}")
            return cls.pixels(image.shape, proprio.shape[0])
        raise ValueError(f"unsupported observation space {space!r} (Box or Dict image/proprio)")

    # ------------------------------------------------------------------ properties
    @property
    def is_pixels(self) -> bool:
        return self.image_shape is not None

    @property
    def proprio_dim(self) -> int:
        return self.vector_dim

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> str:
        if self.image_shape is None:
            return json.dumps({"kind": "vector", "dim": self.vector_dim}, sort_keys=True)
        return json.dumps(
            {
                "kind": "pixels",
                "image_shape": list(self.image_shape),
                "proprio_dim": self.vector_dim,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> ObsSpec:
        try:
            data = loads(text)
        except (TypeError, ValueError) as err:
            raise ValueError(f"observation spec is not valid JSON: {err}") from err
        if not isinstance(data, dict):
            raise ValueError(f"observation spec must be a JSON object, got {data!r}")
        kind = data.get("kind")
        if kind == "vector" and set(data) == {"kind", "dim"}:
            return cls.vector(data["dim"])
        if kind == "pixels" and set(data) == {"kind", "image_shape", "proprio_dim"}:
            shape = data["image_shape"]
            if not isinstance(shape, list):
                raise ValueError(f"image_shape must be a list, got {shape!r}")
            return cls.pixels(tuple(shape), data["proprio_dim"])
        raise ValueError(f"unknown observation spec {data!r}")

    # ------------------------------------------------------------------ checks
    def prepare(self, obs: RawObs) -> tuple[RawObs, bool]:
        """Check one observation or a batch; return it batched and whether it was single.

        Vectors become float32 (B, D); images must already be uint8 (B, H, W, C) (a float
        image is refused rather than guessed at). Non-finite values raise ValueError.
        """
        if self.image_shape is None:
            return _prepare_vector(obs, self.vector_dim, "observation")
        if not isinstance(obs, dict):
            raise ValueError(f"a pixel observation must be a dict image/proprio, got {type(obs)}")
        if set(obs) != {IMAGE_KEY, PROPRIO_KEY}:
            raise ValueError(f"a pixel observation needs keys image and proprio, got {set(obs)}")
        image = np.asarray(obs[IMAGE_KEY])
        if image.dtype != np.uint8:
            raise ValueError(f"image must be uint8, got {image.dtype}")
        if image.shape == self.image_shape:
            single = True
            image = image[None]
        elif image.ndim == 4 and image.shape[1:] == self.image_shape:
            single = False
        else:
            raise ValueError(f"image has shape {image.shape}, expected {self.image_shape}")
        proprio, proprio_single = _prepare_vector(obs[PROPRIO_KEY], self.vector_dim, "proprio")
        if proprio_single != single or len(proprio) != len(image):
            raise ValueError(
                f"image batch {image.shape} and proprio batch {proprio.shape} do not match"
            )
        return {IMAGE_KEY: image, PROPRIO_KEY: proprio}, single


def _prepare_vector(value: Any, dim: int, what: str) -> tuple[np.ndarray, bool]:
    if isinstance(value, dict):
        raise ValueError(f"{what} must be an array, got a dict")
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} is not numeric: {err}") from err
    if array.shape == (dim,):
        single, array = True, array[None]
    elif array.ndim == 2 and array.shape[1] == dim:
        single = False
    else:
        raise ValueError(f"{what} has shape {array.shape}, expected ({dim},) or (batch, {dim})")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} contains NaN or infinite values")
    return array, single
