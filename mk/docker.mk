# The one container image that every job runs; see docker/Dockerfile.

##@ Container image

DOCKER ?= docker
IMAGE ?= kerasjobs
TAG ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GIT_COMMIT = $(shell git rev-parse HEAD 2>/dev/null)

.PHONY: image
image: ## Build IMAGE:TAG from docker/Dockerfile (needs a Docker engine).
	$(DOCKER) build --file docker/Dockerfile \
	  --build-arg KERASJOBS_GIT_COMMIT=$(GIT_COMMIT) --tag $(IMAGE):$(TAG) .

.PHONY: push
push: image ## Push IMAGE:TAG, e.g. IMAGE=registry.example.com/ml/kerasjobs.
	$(DOCKER) push $(IMAGE):$(TAG)

.PHONY: lint-docker
lint-docker: $(STAMP) ## Check docker/Dockerfile with hadolint.
	$(BIN)/hadolint docker/Dockerfile
