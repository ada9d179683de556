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

# The appc App Container Executor validator, as appc built it
# (scripts/build-ace-validator-acis of github.com/appc/spec): one static
# binary from the module in go.mod, in two images whose manifests come
# from the module's ace/image_manifest_{main,sidekick}.json.in. Test
# images: tests/ace_test.go runs both in one pod.
ACE_WORK := $(BUILD)/ace

TEST_IMAGES += $(IMAGES)/ace-validator-main.aci $(IMAGES)/ace-validator-sidekick.aci

$(ACE_WORK)/ace-validator: go.mod go.sum
	@mkdir -p $(@D)
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags '-s -w -buildid=' -o $@.tmp github.com/appc/spec/ace
	mv $@.tmp $@

$(IMAGES)/ace-validator-%.aci: $(ACE_WORK)/ace-validator $(MKACI) mk/stage1.mk
	@mkdir -p $(@D)
	rm -rf $(ACE_WORK)/$*
	mkdir -p $(ACE_WORK)/$*/rootfs/opt/acvalidator
	cp $(ACE_WORK)/ace-validator $(ACE_WORK)/$*/rootfs/
	# The module's directory is known once building the binary fetched it.
	sed -e 's/@ACI_OS@/linux/' -e 's/@ACI_ARCH@/$(S1_ARCH)/' \
		"$$($(GO) list -m -f '{{.Dir}}' github.com/appc/spec)/ace/image_manifest_$*.json.in" > $(ACE_WORK)/$*/manifest
	$(MKACI) $(ACE_WORK)/$*/manifest $(ACE_WORK)/$*/rootfs $@
