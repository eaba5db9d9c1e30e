# Convenience targets; each is one documented command.
PY := .venv/bin/python
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup release check-release solutions solutions-fast test palette
setup:           ; bash scripts/setup-env.sh
release:         ; $(PY) -m coursetools release
check-release:   ; $(PY) -m coursetools release --check
solutions:       ; $(PY) -m coursetools solve --mode full
solutions-fast:  ; $(PY) -m coursetools solve --mode fast
test:            ; bash scripts/test.sh
palette:         ; cd source/a2-cnn && ../../$(PY) -m a2cnn.palette
