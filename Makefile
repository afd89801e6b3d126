# sernoise: one-command install, demo and tests.
#   make demo   create .venv if needed, then run the workflow at demo scale
#   make test   create .venv if needed, then lint and run the whole test suite (the CI command)
#   make test-fast   unit tests only (no Snakemake runs), for the edit-test loop
#   make lint   ruff on the Python code, snakefmt on the Snakefile and rules
SHELL := /bin/bash
VENV ?= .venv
CORES ?= 2
SHARED_DATA ?= ../shared/data
# The demo runs on ../shared/data when it is there (no download); otherwise it downloads
# RAVDESS and ESC-50 (configs/demo.yaml).
DEMO_CONFIG ?= $(if $(wildcard $(SHARED_DATA)/ravdess),tests/configs/shared_data.yaml,configs/demo.yaml)
DEMO_CORPUS ?= ravdess
STAMP := $(VENV)/.sernoise-installed

.PHONY: venv demo test test-fast lint dryrun clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml tools/setup_venv.sh
	VENV=$(VENV) tools/setup_venv.sh
	touch $@

# The demo builds Table 3 first (T-DNN and E-DNN: the headline result), then everything else
# (noise-robust arms and Table 4, the attack and Table 5, perception toolkit, report inputs),
# and prints the wall time of each step.
demo: venv
	@start=$$(date +%s); \
	$(VENV)/bin/snakemake --cores $(CORES) results/$(DEMO_CORPUS)/tables/table3.csv --configfile $(DEMO_CONFIG) || exit $$?; \
	table3=$$(date +%s); \
	$(VENV)/bin/snakemake --cores $(CORES) --configfile $(DEMO_CONFIG) || exit $$?; \
	end=$$(date +%s); \
	echo "make demo: results/$(DEMO_CORPUS)/tables/table3.csv after $$(( (table3 - start) / 60 )) min $$(( (table3 - start) % 60 )) s;" \
	     "everything after $$(( (end - start) / 60 )) min $$(( (end - start) % 60 )) s (--cores $(CORES))"

test: venv lint
	$(VENV)/bin/python -m pytest -n $(CORES) --dist loadfile --durations=20

test-fast: venv
	$(VENV)/bin/python -m pytest -n $(CORES) --dist loadfile -m "not workflow" --durations=10

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/snakefmt --check Snakefile rules/

dryrun: venv
	$(VENV)/bin/snakemake -n --quiet

clean:
	rm -rf results logs .snakemake benchmarks/snakemake
