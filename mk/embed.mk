# Embeddings: train a run, then export it to TensorBoard's Projector.
# The showcase is `make embed DATASET=fashion_mnist MODEL=cnn` (downloads
# Fashion-MNIST once); the default, digits with the MLP, works offline.

##@ Embeddings

DATASET ?= digits
MODEL ?= mlp
# One run per dataset and model, so rerunning resumes it instead of retraining.
EMBED_RUN ?= embed-$(notdir $(basename $(DATASET)))-$(subst :,-,$(notdir $(MODEL)))
EMBED_ARGS ?=

.PHONY: embed
embed: $(STAMP) ## Train DATASET with MODEL and export embeddings for the Projector.
	$(BIN)/kerasjobs train --root $(ROOT) --dataset $(DATASET) --model $(MODEL) \
	  --run-name $(EMBED_RUN)
	$(BIN)/kerasjobs embed --root $(ROOT) --run $(EMBED_RUN) $(EMBED_ARGS)
