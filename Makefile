# cairn — build, run, test. Needs only Go, git and make: every tool it
# uses (buf, grpcurl, the protoc plugins) comes from the Go module proxy.

GO      ?= go
BIN     := $(CURDIR)/bin
BUF     := $(GO) tool -modfile=tools/go.mod buf
GRPCURL_VERSION := v1.9.4

.PHONY: build run test generate lint bench check-generated

## build: the cairn binary in bin/
build:
	$(GO) build -o $(BIN)/cairn ./cmd/cairn

## run: one master and three workers in one process (cairn dev), data in .dev-data/
run:
	$(GO) run ./cmd/cairn dev

## test: unit tests, fuzz seeds and the end-to-end tests (real processes, real grpcurl)
test: $(BIN)/grpcurl
	$(GO) test -count=1 -timeout 20m ./...

$(BIN)/grpcurl:
	GOBIN=$(BIN) $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

## generate: regenerate the Go code from proto/ with buf
generate:
	$(BUF) generate

## check-generated: fail when generate changes any committed file
check-generated: generate
	@git diff --exit-code --stat -- proto || (echo "generated code is stale: run make generate and commit" >&2; exit 1)
	@test -z "$$(git status --porcelain -- proto)" || (git status --porcelain -- proto; echo "make generate made new files: commit them" >&2; exit 1)

## lint: buf lint, go vet and gofmt
lint:
	$(BUF) lint
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || (gofmt -l .; echo "gofmt these files" >&2; exit 1)

## bench: every figure in BENCHMARKS.md (placement, journal and etcd beside it, failover, data, jobs, cleanup, persistence, this machine's page cache); tens of minutes
bench: build
	$(GO) test ./placement -run XXX -bench . -benchmem -benchtime=300000x
	$(GO) run ./tests/bench pagecache
	$(GO) run ./tests/bench journal
	cd tools/etcdanchor && $(GO) run . --clients 1,64,1000
	$(GO) run ./tests/bench failover
	$(GO) run ./tests/bench data
	$(GO) run ./tests/bench leases
	$(GO) run ./tests/bench rebalance
	$(GO) run ./tests/bench cleanup
	$(GO) run ./tests/bench persist
