# xstream — see README.md. `make demo` and `make test` are the two commands
# a fresh machine needs.

GO      ?= go
BIN     ?= bin
CMDS    := $(notdir $(wildcard cmd/*))
PREFIX  ?= /usr/local
FUZZTIME ?= 10s
# Seeds are whole streams of several KiB; minimising one takes long, so
# keep it short or a brief run spends its time there.
# Packages whose tests also run as 386 (native) and s390x (big-endian,
# under qemu-user-static).
CROSS_PKGS := ./lib/... ./internal/...
# urfave/cli's man-page and Markdown writers, and the Markdown parser they
# bring, are never used. Left out, every command starts sooner: 27 ms of
# xrestore's 132 ms under the Xen lab's emulation.
export GOFLAGS += -tags=urfave_cli_no_docs

.PHONY: all build test test-unit test-cross test-xen bench fuzz cross install demo clean vet xen-check

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

vet:
	$(GO) vet ./...

# The one test command: unit and end-to-end tests on amd64, then the
# format libraries on 386 and on big-endian s390x.
test: vet test-unit test-cross

test-unit:
	$(GO) test -count=1 ./...

test-cross:
	GOARCH=386 $(GO) test -count=1 $(CROSS_PKGS)
	@if command -v qemu-s390x-static >/dev/null 2>&1; then \
		echo "GOARCH=s390x go test $(CROSS_PKGS) (big-endian, under qemu-s390x-static)"; \
		GOARCH=s390x $(GO) test -count=1 -exec qemu-s390x-static $(CROSS_PKGS); \
	else \
		echo "SKIP: s390x tests: qemu-user-static is not installed (.ci/run installs it)"; \
		if [ -n "$$CI" ]; then echo "CI must run the s390x tests"; exit 1; fi; \
	fi

# xsave and xrestore against a real Xen 4.17 in the lab (../shared/xenlab,
# run as root, two lab boots, 8 to 13 minutes): see tests/xen/run.sh.
test-xen:
	bash tests/xen/run.sh

# Times xstream-cat --verify and --digest against cat on a generated 1 GiB
# stream; BENCHFLAGS="-size 4GiB -keep" and so on pass flags through.
# benchcompress: xstream-compress against zstd -1 -T0 and lz4 -1, and
# compressed save-and-restore pipelines (BENCHCOMPRESSFLAGS).
bench: build
	$(GO) run ./tests/bench -bin $(BIN) $(BENCHFLAGS)
	$(GO) run ./tests/benchstore -bin $(BIN) $(BENCHSTOREFLAGS)
	$(GO) run ./tests/benchlegacy $(BENCHLEGACYFLAGS)
	$(GO) run ./tests/benchcompress -bin $(BIN) $(BENCHCOMPRESSFLAGS)

# A short run of every fuzz target.
fuzz:
	@for pkg in $$($(GO) list ./lib/...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $$pkg || exit 1; \
		done; \
	done

cross:
	@mkdir -p $(BIN)/386 $(BIN)/s390x
	CGO_ENABLED=0 GOARCH=386 $(GO) build -o $(BIN)/386/ ./cmd/...
	CGO_ENABLED=0 GOARCH=s390x $(GO) build -o $(BIN)/s390x/ ./cmd/...

install:
	$(GO) build -o $(DESTDIR)$(PREFIX)/bin/ ./cmd/...

# Xen's own verifier on xsave's output (XEN_SRC=path/to/xen; skips without it).
xen-check: build
	@bash tests/xen-check.sh $(BIN)

demo: build
	@sh tests/demo.sh $(BIN)

clean:
	rm -rf $(BIN)
