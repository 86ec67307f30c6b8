# The whole chapter on one local root, offline, in a few minutes: see
# scripts/demo.sh for the steps.

##@ Demo

DEMO_ROOT ?= runs/demo
DEMO_PORT ?= 6006
DEMO_SERVE ?= 1

.PHONY: demo
demo: $(STAMP) ## Train, embed, tune (chief + 2 workers), report, serve TensorBoard.
	DEMO_ROOT=$(DEMO_ROOT) DEMO_PORT=$(DEMO_PORT) DEMO_SERVE=$(DEMO_SERVE) \
	  BIN=$(BIN) MAKE="$(MAKE)" scripts/demo.sh

.PHONY: demo-clean
demo-clean: ## Remove the demo's root (DEMO_ROOT).
	rm -rf $(DEMO_ROOT)
