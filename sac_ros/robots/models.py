"""Where the robot description files (URDF, MJCF) live, in a checkout or an install.

Files: ``urdf/<robot>/<robot>.urdf`` and ``urdf/<robot>/<robot>.xml`` (MJCF), at the
repository root in a source tree and under ``share/sac_ros/urdf`` once installed
(setup.py copies the folder there).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROBOTS: tuple[str, ...] = ("dclaw", "minitaur")
KINDS: dict[str, str] = {"mjcf": ".xml", "urdf": ".urdf"}
PACKAGE = "sac_ros"


def _source_root() -> Path:
    """The repository root when running from a checkout: <repo>/sac_ros/robots/models.py."""
    return Path(__file__).resolve().parents[2]


def _candidate_roots() -> list[Path]:
    """Folders that may hold ``urdf/``: source tree, ament index, sys.prefix/share."""
    roots = [_source_root()]
    try:  # a pure-python ROS package; absent in a bare venv
        from ament_index_python.packages import (
            PackageNotFoundError,
            get_package_share_directory,
        )

        try:
            roots.append(Path(get_package_share_directory(PACKAGE)))
        except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH unset
            pass
    except ImportError:
        pass
    roots.append(Path(sys.prefix) / "share" / PACKAGE)
    return roots


def model_path(robot: str, kind: str) -> Path:
    """Path of ``robot``'s description of ``kind`` ("mjcf" or "urdf").

    Raises ValueError for an unknown robot or kind, FileNotFoundError when no copy is
    found in the source tree or the installed share folder.
    """
    if robot not in ROBOTS:
        raise ValueError(f"unknown robot {robot!r}; expected one of {ROBOTS}")
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {tuple(KINDS)}")
    relative = Path("urdf") / robot / f"{robot}{KINDS[kind]}"
    searched = []
    for root in _candidate_roots():
        candidate = root / relative
        if candidate.is_file():
            return candidate
        searched.append(str(candidate))
    raise FileNotFoundError(f"no {kind} model for {robot}; looked in: {', '.join(searched)}")
