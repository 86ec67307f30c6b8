# Hyperparameter search on the bundled digits: a chief and WORKERS workers on
# this machine, on a free port, as a cluster would run them (WORKERS=0: one
# process). Rerunning the same command resumes the search.

##@ Tuning

WORKERS ?= 2
TUNE_ARGS ?= --max-trials 10 --epochs 10
TUNE_LOGS := $(ROOT)/tune-logs
FREE_PORT := import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); \
  print(s.getsockname()[1])

.PHONY: tune
tune: $(STAMP) ## Tune digits with a chief and WORKERS workers (logs in ROOT/tune-logs).
	@if [ "$(WORKERS)" = "0" ]; then \
	  exec $(BIN)/kerasjobs tune --root $(ROOT) $(TUNE_ARGS); \
	fi; \
	mkdir -p $(TUNE_LOGS); \
	port=$$($(BIN)/python -c '$(FREE_PORT)'); \
	echo "chief on 127.0.0.1:$$port; worker logs in $(TUNE_LOGS)"; \
	pids=""; \
	for index in $$(seq 0 $$(($(WORKERS) - 1))); do \
	  $(BIN)/kerasjobs tune --root $(ROOT) $(TUNE_ARGS) --role worker \
	    --worker-id worker-$$index --oracle 127.0.0.1:$$port \
	    > $(TUNE_LOGS)/worker-$$index.log 2>&1 & \
	  pids="$$pids $$!"; \
	done; \
	$(BIN)/kerasjobs tune --root $(ROOT) $(TUNE_ARGS) --role chief \
	  --oracle 127.0.0.1:$$port 2> $(TUNE_LOGS)/chief.log; status=$$?; \
	for pid in $$pids; do wait $$pid || status=1; done; \
	[ $$status -eq 0 ] || tail -n 3 $(TUNE_LOGS)/*.log; \
	exit $$status
