# cairn — build, run, test. Needs only Go, git and make: every tool it
# uses (buf, grpcurl, the protoc plugins) comes from the Go module proxy,
# except the Python SDK's, which come from Debian's archive
# (sdk/python/install-deps.sh installs them when they are missing).

GO      ?= go
BIN     := $(CURDIR)/bin
BUF     := $(GO) tool -modfile=tools/go.mod buf
GRPCURL_VERSION := v1.9.4
# A real S3 server for the tests of S3 mounts (Apache-2.0; MinIO's server is AGPL).
VERSITYGW_VERSION := v1.8.0
# Debian's interpreter: it sees Debian's python3-grpcio, -protobuf, -xxhash, -pytest.
PYTHON  := /usr/bin/python3

.PHONY: build run test generate lint bench check-generated python-deps test-python bench-python

## build: the cairn binary in bin/
build:
	$(GO) build -o $(BIN)/cairn ./cmd/cairn

## run: one master and three workers in one process (cairn dev), data in .dev-data/
run:
	$(GO) run ./cmd/cairn dev

## test: unit tests, fuzz seeds and the end-to-end tests (real processes, real grpcurl), the Python SDK's pytest suite among them (tests/python_test.go)
test: $(BIN)/grpcurl $(BIN)/versitygw python-deps
	CAIRN_PYTHON_TESTS=required $(GO) test -count=1 -timeout 20m ./...

$(BIN)/grpcurl:
	GOBIN=$(BIN) $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

# Static (CGO_ENABLED=0): the same binary serves the tests and the compose
# cluster's S3 image, which is FROM scratch.
$(BIN)/versitygw:
	CGO_ENABLED=0 GOBIN=$(BIN) $(GO) install -trimpath github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

## python-deps: protoc, grpc_python_plugin and the Python SDK's runtime and pytest, from Debian, when missing
python-deps:
	@sh sdk/python/install-deps.sh

## test-python: only the Python SDK's tests (pytest against clusters it starts from bin/cairn)
test-python: build python-deps
	cd sdk/python && CAIRN_BIN=$(BIN)/cairn PYTHONDONTWRITEBYTECODE=1 $(PYTHON) -m pytest -q

## bench-python: the Python SDK's figures in BENCHMARKS.md (owners/s beside Go's, read MiB/s of a 256 MiB file beside cairn fs get)
bench-python: build python-deps
	$(PYTHON) sdk/python/bench.py --cairn $(BIN)/cairn

## generate: regenerate the Go code in proto/ and the Python SDK's in sdk/python/ with buf
generate: python-deps
	$(BUF) generate

## check-generated: fail when generate changes any committed file
check-generated: generate
	@git diff --exit-code --stat -- proto sdk/python || (echo "generated code is stale: run make generate and commit" >&2; exit 1)
	@test -z "$$(git status --porcelain -- proto sdk/python)" || (git status --porcelain -- proto sdk/python; echo "make generate made new files: commit them" >&2; exit 1)

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
	$(MAKE) bench-python

## image: cairn:dev, FROM scratch with the static binary at /usr/local/bin/cairn, and cairn-s3:dev (versitygw, the compose cluster's S3 server); also writes the compose cluster's tokens and S3 keys to deploy/compose/secrets/ once
image:
	CGO_ENABLED=0 $(GO) build -trimpath -o deploy/compose/.build/cairn ./cmd/cairn
	docker build -q -t cairn:dev -f deploy/compose/Dockerfile deploy/compose/.build
	mkdir -p deploy/compose/.build-s3/bucket
	CGO_ENABLED=0 GOBIN=$(CURDIR)/deploy/compose/.build-s3 $(GO) install -trimpath github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)
	docker build -q -t cairn-s3:dev -f deploy/compose/Dockerfile.s3 deploy/compose/.build-s3
	sh deploy/compose/make-secrets.sh deploy/compose/.build/cairn deploy/compose/secrets

## drill: failover drills against deploy/compose/docker-compose.yml, each on a fresh cluster: all, or DRILL=name[,name]; logs in tests/drills/.logs/
drill: image
	$(GO) run ./tests/drills $(if $(DRILL),--drill $(DRILL)) $(DRILL_FLAGS)

## check-k8s: the manifests in deploy/k8s decoded strictly into the Kubernetes API types (a Go module of its own)
check-k8s:
	cd deploy/k8s && $(GO) test -count=1 ./...

.PHONY: image drill check-k8s
