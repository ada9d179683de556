# Test images, built from the sources in tests/images and never committed as
# binaries. Each rootfs is assembled from scratch by tests/images/stage.sh
# and packed by mk/mkaci.sh, so the same host packages and sources always
# give the same image IDs.

TI_SRC  := tests/images
TI_WORK := $(BUILD)/testimages
TI_DEPS := $(TI_SRC)/stage.sh $(TI_SRC)/etc/passwd $(TI_SRC)/etc/group $(MKACI) mk/testimages.mk
# appc names architectures as uname does for arm64.
TI_ARCH := $(subst arm64,aarch64,$(shell $(GO) env GOARCH))

# Variants of inspect: the same rootfs under a manifest that sets what only
# an image can (mount points, event handlers, isolators, a non-root user).
TI_VARIANTS := $(patsubst $(TI_SRC)/inspect-variants/%.manifest,$(IMAGES)/%.aci,$(wildcard $(TI_SRC)/inspect-variants/*.manifest))

TEST_IMAGES += $(IMAGES)/busybox.aci $(IMAGES)/inspect.aci $(IMAGES)/inspect.aci.gz \
	$(IMAGES)/dep-base.aci $(IMAGES)/dep-top.aci $(IMAGES)/whitelist.aci $(TI_VARIANTS)

# ti-manifest NAME: the image's manifest with the build's architecture.
ti-manifest = mkdir -p $(TI_WORK)/$(1) && sed 's/@ARCH@/$(TI_ARCH)/' $(TI_SRC)/$(1)/manifest > $(TI_WORK)/$(1)/manifest

# -buildvcs=false keeps the commit out of the binary, so that the image ID
# changes only when the program does.
$(TI_WORK)/inspect.bin: $(wildcard $(TI_SRC)/inspect/*.go) go.mod go.sum
	@mkdir -p $(@D)
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags '-s -w -buildid=' -o $@.tmp ./$(TI_SRC)/inspect
	mv $@.tmp $@

$(IMAGES)/busybox.aci: $(TI_SRC)/busybox/manifest $(TI_DEPS) /bin/busybox
	@mkdir -p $(@D)
	$(call ti-manifest,busybox)
	$(TI_SRC)/stage.sh $(TI_WORK)/busybox/rootfs busybox
	$(MKACI) $(TI_WORK)/busybox/manifest $(TI_WORK)/busybox/rootfs $@

$(IMAGES)/inspect.aci: $(TI_SRC)/inspect/manifest $(TI_WORK)/inspect.bin $(TI_DEPS) /bin/busybox
	@mkdir -p $(@D)
	$(call ti-manifest,inspect)
	$(TI_SRC)/stage.sh $(TI_WORK)/inspect/rootfs busybox file $(TI_WORK)/inspect.bin inspect
	$(MKACI) $(TI_WORK)/inspect/manifest $(TI_WORK)/inspect/rootfs $@

$(TI_VARIANTS): $(IMAGES)/%.aci: $(TI_SRC)/inspect-variants/%.manifest $(TI_WORK)/inspect.bin $(TI_DEPS) /bin/busybox
	@mkdir -p $(@D) $(TI_WORK)/$*
	sed 's/@ARCH@/$(TI_ARCH)/' $< > $(TI_WORK)/$*/manifest
	$(TI_SRC)/stage.sh $(TI_WORK)/$*/rootfs busybox file $(TI_WORK)/inspect.bin inspect
	$(MKACI) $(TI_WORK)/$*/manifest $(TI_WORK)/$*/rootfs $@

$(IMAGES)/inspect.aci.gz: $(IMAGES)/inspect.aci
	gzip -n -c $< > $@.tmp
	mv $@.tmp $@

# dep-base carries busybox so that the images above it can run; the links
# give the renderer hard links and symlinks to keep.
$(IMAGES)/dep-base.aci: $(TI_SRC)/dep-base/manifest $(shell find $(TI_SRC)/dep-base -type f) $(TI_DEPS) /bin/busybox
	@mkdir -p $(@D)
	$(call ti-manifest,dep-base)
	$(TI_SRC)/stage.sh $(TI_WORK)/dep-base/rootfs busybox tree $(TI_SRC)/dep-base/rootfs link base/a base/hardlink
	ln -s a $(TI_WORK)/dep-base/rootfs/base/link
	ln -s /base/dir $(TI_WORK)/dep-base/rootfs/base/abs-link
	$(MKACI) $(TI_WORK)/dep-base/manifest $(TI_WORK)/dep-base/rootfs $@

$(IMAGES)/dep-top.aci: $(TI_SRC)/dep-top/manifest $(shell find $(TI_SRC)/dep-top -type f) $(TI_DEPS)
	@mkdir -p $(@D)
	$(call ti-manifest,dep-top)
	$(TI_SRC)/stage.sh $(TI_WORK)/dep-top/rootfs tree $(TI_SRC)/dep-top/rootfs
	$(MKACI) $(TI_WORK)/dep-top/manifest $(TI_WORK)/dep-top/rootfs $@

$(IMAGES)/whitelist.aci: $(TI_SRC)/whitelist/manifest $(shell find $(TI_SRC)/whitelist -type f) $(TI_DEPS)
	@mkdir -p $(@D)
	$(call ti-manifest,whitelist)
	$(TI_SRC)/stage.sh $(TI_WORK)/whitelist/rootfs tree $(TI_SRC)/whitelist/rootfs
	$(MKACI) $(TI_WORK)/whitelist/manifest $(TI_WORK)/whitelist/rootfs $@
