# CNI plugins for the nspawn stage1's networking (stage1/network). They are
# the real plugins of github.com/containernetworking/plugins, built static
# from that module at a pinned version with its own go.mod, so that our
# go.mod never has to agree with theirs. mk/stage1.mk copies them into the
# stage1 image at /usr/lib/cni; the tests of stage1/network run them from
# $(CNI_PLUGINS_DIR) directly.

CNI_PLUGINS_VERSION := v1.9.1
CNI_PLUGINS_MODULE  := github.com/containernetworking/plugins
CNI_PLUGINS_DIR     := $(BUILD)/cni-plugins
# The stamp is written last, so a half-built directory is never taken as done.
CNI_PLUGINS_STAMP   := $(CNI_PLUGINS_DIR)/.built-$(CNI_PLUGINS_VERSION)

CNI_PLUGIN_PKGS := \
	plugins/main/ptp plugins/main/bridge plugins/main/macvlan \
	plugins/main/ipvlan plugins/main/loopback \
	plugins/ipam/host-local plugins/ipam/dhcp \
	plugins/meta/portmap plugins/meta/tuning plugins/meta/firewall \
	plugins/meta/bandwidth

.PHONY: cni-plugins
cni-plugins: $(CNI_PLUGINS_STAMP)

$(CNI_PLUGINS_STAMP): mk/cni.mk
	rm -rf $(CNI_PLUGINS_DIR) $(CNI_PLUGINS_DIR).tmp
	mkdir -p $(CNI_PLUGINS_DIR).tmp
	GOBIN=$(CNI_PLUGINS_DIR).tmp GOFLAGS= CGO_ENABLED=0 $(GO) install -trimpath -ldflags '-s -w' \
		$(foreach p,$(CNI_PLUGIN_PKGS),$(CNI_PLUGINS_MODULE)/$(p)@$(CNI_PLUGINS_VERSION))
	touch $(CNI_PLUGINS_DIR).tmp/$(notdir $(CNI_PLUGINS_STAMP))
	mv $(CNI_PLUGINS_DIR).tmp $(CNI_PLUGINS_DIR)

# The unit tests of stage1/network run the plugins as root.
unit test: $(CNI_PLUGINS_STAMP)
