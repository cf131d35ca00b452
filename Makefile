# cygnet — IKEv2 keying daemon. See README.md.
#
#   make build   build cygnetd, cygnetctl and cygnet-load into bin/
#   make test    install what the tests need (idempotent), then run the whole suite
#   make demo    two namespaces, a cygnetd in each, a tunnel, a failure rule shown live
#   make fuzz    run each fuzz target for FUZZTIME
#   make bench   run the Go benchmarks
#   make lint    go vet and staticcheck

GO        ?= go
FUZZTIME  ?= 30s
BIN       := bin
PKGS      := ./...

.PHONY: all build test test-deps vm-prep test-go fuzz bench bench-concentrator lint demo clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

# test-deps installs the Debian packages the suite needs (qemu, busybox, strongSwan,
# prometheus, iproute2 …) only when they are missing.
test-deps:
	bash .ci/deps.sh

# vm-prep fetches and caches Debian's kernel and builds the base initramfs for the
# real-ESP tests (kernel/vmtest); idempotent.
vm-prep: test-deps
	@if [ -d kernel/vmtest/cmd/vmprep ]; then $(GO) run ./kernel/vmtest/cmd/vmprep; fi

test: test-deps vm-prep build test-go

test-go:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 30m $(PKGS)
	# the actor tree, its chaos tests and the sockets again under the race detector (the
	# simulator is single-goroutine and deterministic: its seeds run in the plain pass)
	$(GO) test -count=1 -race -timeout 20m ./actors/ ./actors/actorkit/ ./actors/sockets/ ./actors/workpool/ ./actors/ike/

# fuzz runs every Fuzz target of the module for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# bench-concentrator is the concentrator benchmark (issue 8, cmd/cygnet-load/bench):
# cygnetd, the bare core and charon as responders under cygnet-load, in namespaces.
# Needs root, strongSwan and perf; the full run takes about an hour. Results go to
# /tmp/cygnet-bench-<time>/ (docs/benchmarks.md keeps a reviewed copy). A small run:
#   make bench-concentrator BENCH_ARGS=-quick
BENCH_ARGS ?=
bench-concentrator: test-deps
	$(GO) test -tags concentrator -run '^TestConcentrator$$' -count=1 -v -timeout 6h ./cmd/cygnet-load/bench -args $(BENCH_ARGS)

lint:
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

demo: build
	bash deploy/demo/demo.sh

clean:
	rm -rf $(BIN)
