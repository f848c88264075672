# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check install clean bench

# The install is quiet: pip's own output (build banners, notices, warnings) goes to
# $(VENV)/pip.log and is shown only when pip fails; make prints the project's steps.
PIP := $(BIN)/pip --disable-pip-version-check --no-input
PIPLOG := $(VENV)/pip.log
QUIETLY = >>$(PIPLOG) 2>&1 || { tail -30 $(PIPLOG); echo "pip failed; full log: $(PIPLOG)"; exit 1; }

$(BIN)/python:
	@echo "==> creating the Python environment $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip $(QUIETLY)

# torch first and pinned: on these machines 2.13.0 is a local CPU wheel, while an
# unpinned torch would pull gigabytes of CUDA packages.
$(STAMP): $(BIN)/python pyproject.toml
	@echo "==> installing torch (CPU) and insar-raster with its dependencies (log: $(PIPLOG))"
	@$(PIP) install torch==2.13.0 $(QUIETLY)
	@$(PIP) install -e ".[test]" $(QUIETLY)
	@touch $(STAMP)

install: $(STAMP)

# The main job end to end on a generated EGMS-style sample; outputs land in demo/.
# evaluate reuses the model forecast just trained (same window/steps/split defaults); the
# paper arch is left out there because training it at 128x128 takes longer than the rest.
DEMO := demo
CLI := $(BIN)/insar-raster
demo: $(STAMP)
	@mkdir -p $(DEMO)
	@echo "==> 1/5 synth: 20000 EGMS-style measurement points x 100 epochs"
	@$(CLI) synth -o $(DEMO)/sample.csv --points 20000 --shape 128x128 --epochs 100 --overwrite
	@echo "==> 2/5 grid: points -> displacement cube"
	@$(CLI) grid $(DEMO)/sample.csv -o $(DEMO)/sample_cube.nc --overwrite
	@echo "==> 3/5 export: mean velocity as a styled COG"
	@$(CLI) export $(DEMO)/sample_cube.nc --layer velocity -o $(DEMO)/velocity.tif --overwrite
	@echo "==> 4/5 forecast: train a model on the cube and forecast the next epochs"
	@$(CLI) forecast $(DEMO)/sample_cube.nc -o $(DEMO)/forecast.tif --save-model $(DEMO)/model.ipt --overwrite --plot
	@echo "==> 5/5 evaluate: baselines and the model on one chronological split"
	@$(CLI) evaluate $(DEMO)/sample_cube.nc --truth $(DEMO)/sample_truth.nc --model $(DEMO)/model.ipt \
		--models persistence,trend,trend_seasonal,history_fit,lasso,lightgbm,convlstm -o $(DEMO)/report --overwrite
	@echo "Open $(DEMO)/forecast.tif, $(DEMO)/velocity.tif (styled by their .qml) or $(DEMO)/sample_cube.nc in QGIS; report in $(DEMO)/report/report.md"

# The QGIS tests (tests/test_qgis.py) run where real QGIS is installed, else are skipped.
test: $(STAMP)
	@$(BIN)/python -m pytest -q -rs tests
	@for py in $${INSAR_RASTER_QGIS_PYTHON:-} /usr/bin/python3 python3; do \
		QT_QPA_PLATFORM=offscreen $$py -c "import qgis.core" >/dev/null 2>&1 && exit 0; done; \
		echo "note: the QGIS tests were skipped: install real QGIS to run them (Debian/Ubuntu: sudo apt install python3-qgis qgis-providers)"

# Lint (pyflakes, pycodestyle, bugbear, import order) and formatting, as configured in
# pyproject.toml; `.venv/bin/ruff format .` fixes the formatting.
check: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/grid_speed.py

clean:
	rm -rf $(VENV) demo build *.egg-info
