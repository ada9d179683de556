# The default stage1 image: the static multi-call binary (stage1/cmd/stage1)
# at /stage1 with its entrypoints as symlinks, plus systemd-nspawn, systemd,
# systemd-journald, systemd-shutdown, systemctl and journalctl with exactly
# the shared libraries they load, taken from the build host's installed
# Debian packages (systemd, systemd-container) by stage1/mkrootfs.sh, and
# the CNI plugins (mk/cni.mk) at /usr/lib/cni.

S1_WORK := $(BUILD)/stage1
S1_ARCH := $(subst arm64,aarch64,$(shell $(GO) env GOARCH))

ALL_IMAGES += $(IMAGES)/stage1.aci

$(S1_WORK)/stage1: $(GO_SOURCES)
	@mkdir -p $(@D)
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags '-s -w -buildid=' -o $@.tmp ./stage1/cmd/stage1
	mv $@.tmp $@

$(IMAGES)/stage1.aci: $(S1_WORK)/stage1 stage1/manifest.in stage1/mkrootfs.sh VERSION $(MKACI) mk/stage1.mk $(CNI_PLUGINS_STAMP) \
		/usr/bin/systemd-nspawn /lib/systemd/systemd
	@mkdir -p $(@D)
	stage1/mkrootfs.sh $(S1_WORK)/rootfs $(S1_WORK)/stage1 > $(S1_WORK)/systemd-version
	mkdir -p $(S1_WORK)/rootfs/usr/lib/cni
	cp $(CNI_PLUGINS_DIR)/* $(S1_WORK)/rootfs/usr/lib/cni/
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@ARCH@/$(S1_ARCH)/' \
		-e "s/@SYSTEMD_VERSION@/$$(cat $(S1_WORK)/systemd-version)/" stage1/manifest.in > $(S1_WORK)/manifest
	$(MKACI) $(S1_WORK)/manifest $(S1_WORK)/rootfs $@
