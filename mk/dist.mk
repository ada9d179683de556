# Packaging: man pages and shell completions generated from rkt's own
# command tree (never committed), and the systemd units of dist/. `make
# dist` fills build/dist; `make install` copies it under $(DESTDIR)$(PREFIX).

DIST     := $(BUILD)/dist
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
UNITDIR  ?= $(PREFIX)/lib/systemd/system
# The last commit's time dates the man pages, so that a rebuild is identical.
DIST_EPOCH := $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
DIST_UNITS := $(wildcard dist/systemd/*.service dist/systemd/*.socket dist/systemd/*.timer)

.PHONY: dist install-dist
dist: $(DIST)/.done

# The units embed BINDIR: regenerate them when it changes.
$(BUILD)/.dist-bindir: FORCE
	@mkdir -p $(@D)
	@echo '$(BINDIR)' | cmp -s - $@ || echo '$(BINDIR)' > $@

# rkt built with the gen-docs command, which the installed rkt lacks (see
# rkt/gendocs.go).
$(TOOLS)/rkt-gendocs: $(GO_SOURCES)
	@mkdir -p $(@D)
	CGO_ENABLED=0 $(GO) build -tags gendocs -trimpath -o $@ ./rkt

$(DIST)/.done: $(BIN)/rkt $(TOOLS)/rkt-gendocs $(DIST_UNITS) $(wildcard dist/examples/*) mk/dist.mk $(BUILD)/.dist-bindir
	rm -rf $(DIST).tmp
	mkdir -p $(DIST).tmp/man/man1 $(DIST).tmp/bash-completion $(DIST).tmp/zsh $(DIST).tmp/systemd $(DIST).tmp/examples
	SOURCE_DATE_EPOCH=$(DIST_EPOCH) $(TOOLS)/rkt-gendocs gen-docs --man $(DIST).tmp/man/man1
	$(BIN)/rkt completion bash > $(DIST).tmp/bash-completion/rkt
	$(BIN)/rkt completion zsh > $(DIST).tmp/zsh/_rkt
	# Units name rkt where `make install` puts it.
	for u in $(DIST_UNITS) $(wildcard dist/examples/*); do \
		sed 's,/usr/bin/rkt,$(BINDIR)/rkt,g' $$u > $(DIST).tmp/$$(basename $$(dirname $$u))/$$(basename $$u); done
	touch $(DIST).tmp/.done
	rm -rf $(DIST) && mv $(DIST).tmp $(DIST)

install-dist: dist
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/share/doc/rkt/examples
	install -m 0644 $(DIST)/man/man1/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -D -m 0644 $(DIST)/bash-completion/rkt $(DESTDIR)$(PREFIX)/share/bash-completion/completions/rkt
	install -D -m 0644 $(DIST)/zsh/_rkt $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_rkt
	install -m 0644 $(DIST)/systemd/* $(DESTDIR)$(UNITDIR)/
	install -m 0644 $(DIST)/examples/* $(DESTDIR)$(PREFIX)/share/doc/rkt/examples/
