#!/usr/bin/env bash
# Creates .venv with everything sac_ros needs, from the pinned requirement files.
# Idempotent: the Makefile reruns it only when a requirement file changes.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# Headless MuJoCo rendering (MUJOCO_GL=egl) needs Mesa's EGL and DRI drivers, and the
# OpenGL dispatch library PyOpenGL loads for EGL (libOpenGL.so.0).
missing=()
for pkg in libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} for headless rendering"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  if ! { $SUDO apt-get update -qq &&
         $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; }; then
    echo "setup: could not install ${missing[*]} (needs root or sudo, and the Debian" \
         "mirror); install them and run again" >&2
    exit 1
  fi
fi

if [ -n "${ROS_DISTRO:-}" ]; then
  # A sourced ROS 2 install provides rclpy and the messages: let the venv see them.
  echo "setup: ROS_DISTRO=$ROS_DISTRO is sourced; using its rclpy instead of the PyPI wheels"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv --system-site-packages "$VENV"
else
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)

# torch first and alone: the local CPU wheel. constraints.txt pins it for every later step.
"${PIP[@]}" -c requirements/constraints.txt -r requirements/torch.txt
"${PIP[@]}" -c requirements/constraints.txt -r requirements/base.txt -r requirements/test.txt
if [ -z "${ROS_DISTRO:-}" ]; then
  "${PIP[@]}" -c requirements/constraints.txt -r requirements/ros.txt
fi
"${PIP[@]}" -c requirements/constraints.txt --no-deps --no-build-isolation -e .

"$VENV/bin/python" - <<'PY'
import torch
assert torch.__version__.startswith("2.13.0"), f"torch was changed to {torch.__version__}"
print(f"setup: ok (torch {torch.__version__})")
PY
