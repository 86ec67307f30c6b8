# Kubernetes: render and check k8s/ with the virtual environment's pinned
# kubectl (its built-in kustomize) and kubernetes-validate; deploy with
# KUBECTL, which talks to your current kubectl context.

##@ Kubernetes

KUBECTL ?= $(BIN)/kubectl
OVERLAY ?= gpu
K8S_OVERLAYS := gpu local
# The Kubernetes releases the manifests must be valid for (the three minor
# releases maintained upstream); tests/test_k8s.py checks the same list.
K8S_VERSIONS ?= 1.35.0 1.36.0 1.37.0
K8S_BUILD := build/k8s
K8S_APPLY = $(KUBECTL) apply -k k8s/overlays/$(OVERLAY) --selector
COMPONENT ?=
K8S_LOG_SELECTOR := app.kubernetes.io/part-of=kerasjobs
ifneq ($(COMPONENT),)
K8S_LOG_SELECTOR := $(K8S_LOG_SELECTOR),app.kubernetes.io/component=$(COMPONENT)
endif

.PHONY: k8s-render
k8s-render: $(STAMP) ## Render each overlay into build/k8s/<overlay>.yaml.
	@mkdir -p $(K8S_BUILD)
	@for overlay in $(K8S_OVERLAYS); do \
	  $(BIN)/kubectl kustomize k8s/overlays/$$overlay \
	    > $(K8S_BUILD)/$$overlay.yaml || exit 1; \
	  echo "rendered $(K8S_BUILD)/$$overlay.yaml"; \
	done

# --quiet prints nothing when every object passes, so any line fails the
# check: an error, or a warning such as a kind that has no schema.
.PHONY: k8s-check
k8s-check: k8s-render ## Validate the rendered objects against the API schemas (strict).
	@for overlay in $(K8S_OVERLAYS); do \
	  for version in $(K8S_VERSIONS); do \
	    report=$$($(BIN)/kubernetes-validate --strict --quiet \
	      --kubernetes-version $$version $(K8S_BUILD)/$$overlay.yaml 2>&1); \
	    if [ -n "$$report" ]; then echo "$$report"; exit 1; fi; \
	    echo "$$overlay is valid for Kubernetes $$version"; \
	  done; \
	done

.PHONY: deploy-train
deploy-train: ## Create the volume, stage the dataset, then train (OVERLAY=gpu|local).
	$(K8S_APPLY) 'app.kubernetes.io/component in (data,fetch)'
	$(KUBECTL) wait --for=condition=complete --timeout=30m job/kerasjobs-fetch
	$(K8S_APPLY) 'app.kubernetes.io/component=train'

.PHONY: deploy-embed
deploy-embed: ## Wait for training to complete, then export its embeddings.
	$(K8S_APPLY) 'app.kubernetes.io/component=embed'
	$(KUBECTL) wait --for=condition=complete --timeout=12h job/kerasjobs-train
	$(KUBECTL) patch job/kerasjobs-embed --type=merge \
	  --patch '{"spec":{"suspend":false}}'

.PHONY: deploy-tune
deploy-tune: ## Start a tuning search: the chief, its Service and the workers.
	$(K8S_APPLY) 'app.kubernetes.io/component in (data,tune-chief,tune-worker)'

.PHONY: deploy-tensorboard
deploy-tensorboard: ## Serve TensorBoard over the volume; then port-forward it.
	$(K8S_APPLY) 'app.kubernetes.io/component in (data,tensorboard)'
	@echo "then: $(KUBECTL) port-forward service/kerasjobs-tensorboard 6006:6006"

.PHONY: k8s-logs
k8s-logs: ## Follow the logs of every kerasjobs pod (COMPONENT=train for one).
	$(KUBECTL) logs --follow --prefix --all-containers --max-log-requests 20 \
	  --selector '$(K8S_LOG_SELECTOR)'

.PHONY: k8s-clean
k8s-clean: ## Delete the jobs, TensorBoard and Services; keep the volume.
	$(KUBECTL) delete -k k8s/overlays/$(OVERLAY) --ignore-not-found \
	  --selector 'app.kubernetes.io/component!=data'
