# The fly stage1 image: one static multi-call binary (stage1-fly/) at /fly,
# with the entrypoints the manifest names (run, enter, gc, stop) and the
# internal app launcher (appexec) as symlinks to it.

FLY_WORK := $(BUILD)/stage1-fly
FLY_ARCH := $(subst arm64,aarch64,$(shell $(GO) env GOARCH))

ALL_IMAGES += $(IMAGES)/stage1-fly.aci

$(FLY_WORK)/fly: $(GO_SOURCES)
	@mkdir -p $(@D)
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags '-s -w -buildid=' -o $@.tmp ./stage1-fly
	mv $@.tmp $@

$(IMAGES)/stage1-fly.aci: $(FLY_WORK)/fly stage1-fly/manifest.in VERSION $(MKACI) mk/stage1-fly.mk
	@mkdir -p $(@D)
	rm -rf $(FLY_WORK)/rootfs
	mkdir -p $(FLY_WORK)/rootfs/opt/stage2 $(FLY_WORK)/rootfs/rkt/status $(FLY_WORK)/rootfs/rkt/env
	cp $(FLY_WORK)/fly $(FLY_WORK)/rootfs/fly
	for e in run enter gc stop appexec; do ln -s fly $(FLY_WORK)/rootfs/$$e; done
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@ARCH@/$(FLY_ARCH)/' stage1-fly/manifest.in > $(FLY_WORK)/manifest
	$(MKACI) $(FLY_WORK)/manifest $(FLY_WORK)/rootfs $@
