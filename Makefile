# Two commands do all the set-up on a fresh machine:
#   make demo   train the D'Claw valve task in embedded MuJoCo
#   make test   run the test suite
# Both create .venv from the pinned requirement files on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sac_ros-installed
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: demo test lint bench clean-venv

# bench/common.py and bench/echo_node.py are helpers, not benchmarks.
BENCHES := learner_throughput pendulum_learning sim_speed dclaw_learning control_latency \
	graph_throughput driver_cycle

$(STAMP): requirements/*.txt setup.py package.xml scripts/setup_env.sh
	VENV=$(VENV) scripts/setup_env.sh
	touch $@

demo: $(STAMP)
	$(PY) -m sac_ros.cli demo

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	for b in $(BENCHES); do $(PY) bench/$$b.py || exit 1; done

clean-venv:
	rm -rf $(VENV)
