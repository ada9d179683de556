# Top-level build. Each area adds its own rules in mk/*.mk so that the
# stage1 flavors, test images and tools can grow without touching this file.

# Go's own install location is not in root's PATH on a fresh machine (the
# tools that run go themselves, like gotestsum, need it in PATH too).
export PATH := $(PATH):/usr/local/go/bin
GO        ?= $(shell command -v go || echo /usr/local/go/bin/go)
VERSION   := $(shell cat VERSION)
GITREV    := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
BUILD     := $(CURDIR)/build
BIN       := $(BUILD)/bin
IMAGES    := $(BUILD)/images
TOOLS     := $(BUILD)/tools
MKACI     := $(CURDIR)/mk/mkaci.sh

# Where the rkt binary looks for its default stage1 images; `make install`
# rebuilds with the installed location.
STAGE1_IMAGE_DIR ?= $(IMAGES)

# Static binaries: stage1 programs run inside images that carry no libc of
# their own, and a static rkt starts faster.
GO_STATIC := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w'
RKT_LDFLAGS := -s -w \
	-X main.version=$(VERSION)+$(GITREV) \
	-X main.defaultStage1Image=$(STAGE1_IMAGE_DIR)/stage1.aci \
	-X main.defaultStage1FlyImage=$(STAGE1_IMAGE_DIR)/stage1-fly.aci

# Fragments append to these.
ALL_IMAGES :=
TEST_IMAGES :=

GO_SOURCES := $(shell find . -name '*.go' -not -path './build/*') go.mod go.sum

.PHONY: all rkt rkt-cri images test-images test unit functional bench lint demo clean install deps
all: rkt rkt-cri images test-images

rkt: $(BIN)/rkt
$(BIN)/rkt: $(GO_SOURCES) VERSION $(BUILD)/.rkt-ldflags
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(RKT_LDFLAGS)' -o $@ ./rkt

# The Kubernetes CRI server: a binary of its own so that rkt itself does
# not carry gRPC.
rkt-cri: $(BIN)/rkt-cri
$(BIN)/rkt-cri: $(GO_SOURCES) VERSION
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X main.version=$(VERSION)+$(GITREV)' -o $@ ./cri/rkt-cri

# Rebuild rkt when its link-time settings change (make install links it for
# the installed stage1 location, a plain make for build/images).
$(BUILD)/.rkt-ldflags: FORCE
	@mkdir -p $(@D)
	@echo '$(RKT_LDFLAGS)' | cmp -s - $@ || echo '$(RKT_LDFLAGS)' > $@
.PHONY: FORCE

include $(sort $(wildcard mk/*.mk))

images: $(ALL_IMAGES)
test-images: $(TEST_IMAGES)

$(TOOLS)/gotestsum:
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install gotest.tools/gotestsum@v1.13.0

$(TOOLS)/staticcheck:
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Host packages the build and the tests use (Debian names).
HOST_PACKAGES := systemd-container systemd busybox-static iptables iproute2 gnupg curl xz-utils bzip2 zstd bash-completion

deps:
	@./mk/host-deps.sh $(HOST_PACKAGES)

# Unit tests, then the functional tests in tests/ against the built binaries
# and images. The functional tests need root.
test: all $(TOOLS)/gotestsum
	RKT_BUILD_DIR=$(BUILD) $(TOOLS)/gotestsum --format testname -- -count=1 -timeout 40m -tags gendocs ./...

unit: $(TOOLS)/gotestsum
	$(TOOLS)/gotestsum --format testname -- -count=1 -tags gendocs $$($(GO) list ./... | grep -v /tests)

functional: all $(TOOLS)/gotestsum
	RKT_BUILD_DIR=$(BUILD) $(TOOLS)/gotestsum --format testname -- -count=1 -timeout 40m ./tests/...

bench: all
	RKT_BUILD_DIR=$(BUILD) $(GO) run ./tests/bench

lint: $(TOOLS)/staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags gendocs ./...
	$(TOOLS)/staticcheck -tags gendocs ./...

demo: deps all
	@./mk/demo.sh $(BUILD)

# The binary is linked for $(PREFIX), not $(DESTDIR)$(PREFIX): DESTDIR is
# only where a packager stages the files.
install:
	$(MAKE) STAGE1_IMAGE_DIR=$(PREFIX)/lib/rkt/stage1-images all install-dist
	install -D -m 0755 $(BIN)/rkt $(DESTDIR)$(PREFIX)/bin/rkt
	install -D -m 0755 $(BIN)/rkt-cri $(DESTDIR)$(PREFIX)/bin/rkt-cri
	install -D -m 0644 $(IMAGES)/stage1.aci $(DESTDIR)$(PREFIX)/lib/rkt/stage1-images/stage1.aci
	install -D -m 0644 $(IMAGES)/stage1-fly.aci $(DESTDIR)$(PREFIX)/lib/rkt/stage1-images/stage1-fly.aci

PREFIX ?= /usr/local

clean:
	rm -rf $(BUILD)
