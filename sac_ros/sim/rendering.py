"""Offscreen rendering of a MuJoCo model, created only when an image is first asked for.

MUJOCO_GL must name the backend before mujoco is imported; sac_ros.sim sets it to
"egl" (headless) unless the caller chose another.
"""

from __future__ import annotations

import mujoco
import numpy as np


class LazyRenderer:
    """One mujoco.Renderer per image size, built on first use, for a fixed camera."""

    def __init__(self, model: mujoco.MjModel, camera: str) -> None:
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
            raise ValueError(f"the model has no camera named {camera!r}")
        self._model = model
        self._camera = camera
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}

    def render(self, data: mujoco.MjData, width: int, height: int) -> np.ndarray:
        """RGB image (height, width, 3) uint8 of ``data`` seen from the camera."""
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        key = (int(width), int(height))
        renderer = self._renderers.get(key)
        if renderer is None:
            renderer = mujoco.Renderer(self._model, height=key[1], width=key[0])
            self._renderers[key] = renderer
        renderer.update_scene(data, camera=self._camera)
        return np.ascontiguousarray(renderer.render(), dtype=np.uint8)

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
