# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first and pinned: on these machines 2.13.0 is a local CPU wheel, while an
# unpinned torch would pull gigabytes of CUDA packages.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# The main job end to end on a generated EGMS-style sample; outputs land in demo/.
# evaluate reuses the model forecast just trained (same window/steps/split defaults); the
# paper arch is left out there because training it at 128x128 takes longer than the rest.
DEMO := demo
CLI := $(BIN)/insar-raster
demo: $(STAMP)
	mkdir -p $(DEMO)
	$(CLI) synth -o $(DEMO)/sample.csv --points 20000 --shape 128x128 --epochs 100 --overwrite
	$(CLI) grid $(DEMO)/sample.csv -o $(DEMO)/sample_cube.nc --overwrite
	$(CLI) export $(DEMO)/sample_cube.nc --layer velocity -o $(DEMO)/velocity.tif --overwrite
	$(CLI) forecast $(DEMO)/sample_cube.nc -o $(DEMO)/forecast.tif --save-model $(DEMO)/model.ipt --overwrite --plot
	$(CLI) evaluate $(DEMO)/sample_cube.nc --truth $(DEMO)/sample_truth.nc --model $(DEMO)/model.ipt \
		--models persistence,trend,trend_seasonal,history_fit,lasso,lightgbm,convlstm -o $(DEMO)/report --overwrite
	@echo "Open $(DEMO)/forecast.tif, $(DEMO)/velocity.tif (styled by their .qml) or $(DEMO)/sample_cube.nc in QGIS; report in $(DEMO)/report/report.md"

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)
	$(BIN)/python benchmarks/grid_speed.py

clean:
	rm -rf $(VENV) demo build *.egg-info
