# The two commands a user needs: `make dev` (the main job) and `make test` (every test).
# Both do their own set-up on a fresh machine: the moto virtualenv, Go modules, lint tools.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO       ?= go
PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(CURDIR)/bin
# Pinned on purpose; see docs/decisions.md.
GOLANGCI_LINT_VERSION := v2.15.0
MOTO_REQUIREMENTS     := shared/awstest/requirements.txt
MOTO_STAMP            := $(VENV)/.installed-$(shell sha256sum $(MOTO_REQUIREMENTS) | cut -c1-12)
# A count, not a duration: with a wall-clock -fuzztime, Go 1.26's fuzz coordinator can
# report a spurious "context deadline exceeded" failure with no crasher at the deadline
# (golang/go#75804, fixed only in Go 1.27). A count has no deadline to race.
FUZZTIME ?= 200000x
BENCHTIME ?= 1x

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# Tests find the emulator here (shared/awstest).
export MOTO_SERVER := $(CURDIR)/$(VENV)/bin/moto_server

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(MOTO_STAMP): $(MOTO_REQUIREMENTS)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(MOTO_REQUIREMENTS)
	rm -f $(VENV)/.installed-*
	touch $@

.PHONY: moto
moto: $(MOTO_STAMP) ## install the pinned moto server into $(VENV) (idempotent)

# The programs a user runs locally, built side by side: localdev runs the publisher CLI from
# its own folder.
TOOLS := localdev publish gatewayctl

.PHONY: build
build: ## build the local programs (localdev, publish, gatewayctl, satellite) into bin/
	@for t in $(TOOLS); do $(GO) build -o $(BIN)/$$t ./cmd/$$t; done
	$(GO) build -o $(BIN)/satellite ./satellite/cmd/satellite

.PHONY: dev
dev: moto build ## the main job: local AWS, the four functions, a satellite, a config change round trip
	$(BIN)/localdev $(DEV_FLAGS)

.PHONY: invoke
invoke: moto build ## run one function on a sample: make invoke FN=ingest EVENT=events/sqs/s3-object-created.json
	@[ -n "$(FN)" ] && [ -n "$(EVENT)" ] || { echo "usage: make invoke FN=api|ingest|change|assemble EVENT=events/..."; exit 2; }
	$(BIN)/localdev invoke -fn $(FN) -event $(EVENT)

.PHONY: test
test: moto ## every test, integration tests against the moto server included
	$(GO) test -count=1 ./...

.PHONY: race
race: moto ## every test under the race detector
	$(GO) test -count=1 -race ./...

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME (a count such as 200000x)
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

.PHONY: bench
bench: moto ## run the benchmarks, then print their figures as one table (docs/performance.md)
	@mkdir -p $(BIN)
	status=0; \
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./... 2>&1 | tee $(BIN)/bench.txt || status=$$?; \
	$(GO) build -o $(BIN)/benchtable ./cmd/benchtable; \
	$(BIN)/benchtable < $(BIN)/bench.txt && exit $$status

.PHONY: lambdas
lambdas: ## build every functions/<name> for Lambda (arm64, provided.al2023) into bin/lambda/<name>/bootstrap
	@for dir in functions/*/; do \
	  name=$$(basename $$dir); [ -f $$dir/main.go ] || continue; \
	  echo "lambda $$name"; \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' \
	    -o $(BIN)/lambda/$$name/bootstrap ./$$dir; \
	done

.PHONY: synth
synth: lambdas ## synthesize the CDK app into cdk.out (needs node)
	CDK_OUTDIR=cdk.out $(GO) run ./infra

$(BIN)/golangci-lint:
	GOBIN=$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

.PHONY: lint
lint: $(BIN)/golangci-lint ## gofmt, go vet and golangci-lint
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/golangci-lint run ./...

.PHONY: clean
clean: ## remove build outputs (keeps the virtualenv)
	rm -rf cdk.out bin/lambda dist .localdev
