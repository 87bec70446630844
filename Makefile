# `make run` and `make test` work on a fresh clone: each creates .venv and installs the package first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench clean sample-data

# constraints.txt holds the exact versions CI tested (torch 2.14.1 among them); pyproject.toml only ranges.
# face-alignment goes in without its declared opencv-python: mediapipe's opencv-contrib-python is the one
# OpenCV (pyproject.toml, extra `fan`).
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[test]'
	$(PIP) --no-deps face-alignment
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/annotate run --dataset sample --out sample.zarr --overwrite
	$(BIN)/annotate verify sample.zarr
	$(BIN)/annotate inspect sample.zarr
	$(BIN)/annotate preview sample.zarr --out sample_preview.png
	rm -rf runs/sample
	$(BIN)/fas-train train --store sample.zarr --protocol all --model dccdn3 --epochs 3 --batch 8 --size 64 \
		--width 0.25 --workers 0 --out runs/sample
	$(BIN)/fas-train eval --run runs/sample --workers 0
	@echo "note: a smoke run: 3 epochs on the 15 sample frames, which are train, dev and test at once;"
	@echo "      its figures show that the loop works, not how well a model detects attacks"

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/pipeline_cpu.py
	$(BIN)/python bench/loader.py

sample-data: $(STAMP)
	$(BIN)/python scripts/make_sample_data.py

clean:
	rm -rf $(VENV) sample.zarr sample_preview.png runs/sample
