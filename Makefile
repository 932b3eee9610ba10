# The two commands a newcomer runs (README): `make demo` and `make test`.
# Both set up the machine first (scripts/setup.sh is idempotent and quick when done).
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export RAY_USAGE_STATS_ENABLED := 0
export WANDB_MODE ?= offline

.PHONY: setup demo test test-fast test-cluster bench

setup:
	@scripts/setup.sh

demo: setup
	.venv/bin/omnicodec demo

test: setup
	.venv/bin/python -m pytest -q -m "not cluster and not heavy" --durations=5

# the heavier lane, CI runs it after `make test`: multi-node training with a node lost, Serve
# with replicas killed (each drill starts its own loopback Ray), and long end-to-end round
# trips (a run checkpointing to S3 on a loopback S3 server; the README's flow from an image
# folder to served answers), the ASHA sweep and the killed-worker resume; about 15 minutes on 2 cores
test-cluster: setup
	.venv/bin/python -m pytest -q -m "cluster or heavy" --durations=5

# the unit lane: no Ray cluster, nothing slow (about 2 minutes on 2 cores)
test-fast: setup
	.venv/bin/python -m pytest -q -m "not ray and not slow and not heavy"

bench: setup
	.venv/bin/python benchmarks/run_all.py
