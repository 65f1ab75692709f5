"""Files the package installs under share/sac_ros (config/, launch/, urdf/)."""

from __future__ import annotations

from pathlib import Path

from sac_ros.robots.models import _candidate_roots


def share_path(*parts: str) -> Path:
    """The first existing ``<root>/<parts>`` in the source tree or an install."""
    relative = Path(*parts)
    searched = []
    for root in _candidate_roots():
        if (root / relative).exists():
            return root / relative
        searched.append(str(root / relative))
    raise FileNotFoundError(f"{relative} not found; looked in: {', '.join(searched)}")
