# backtory — see README.md. `make demo` runs a real backup and restore;
# `make test` runs every test (installing what the tests need).
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BUILD    := build
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# The project's packages (a bench work tree may hold stray Go files).
PKGS := ./archive/... ./cmd/... ./dashboard/... ./examples/... ./fusefs/... ./hooks/... ./internal/... ./policy/... ./recovery/... ./remote/... ./rsyncdelta/... ./snapshot/... ./state/...

.PHONY: build test test-go test-vm test-deb test-bmr fuzz bench bench-backtory bench-rsyncdelta bench-peers bench-sftp lint demo deb man clean deps

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BUILD)/backtory ./cmd/backtory

# Every test: the tools the tests need, lint, the Go tests against real
# gpg/rdiff/tar/vsftpd/pure-ftpd, short fuzzing, and the VM tests against
# real OpenZFS and LVM2.
test: deps lint test-go fuzz test-deb test-vm test-bmr

deps:
	@for f in test/deps/*.sh; do echo "== $$f"; bash "$$f" || exit 1; done

# Tests keep what they write with t.ArtifactDir (the dashboard's screenshots)
# under $(BUILD)/test-output/_artifacts.
test-go:
	mkdir -p $(BUILD)/test-output
	BACKTORY_TEST_STRICT=1 $(GO) test -count=1 -timeout 30m -artifacts -outputdir $(CURDIR)/$(BUILD)/test-output $(PKGS)

fuzz:
	scripts/fuzz_test.sh
	scripts/fuzz.sh $(patsubst ./%/...,%,$(PKGS))

# The Debian package (docs/packaging.md): lintian, then install, upgrade,
# remove and purge in a debootstrap chroot.
test-deb:
	test/deb.sh

# Real OpenZFS, LVM2 and btrfs in a qemu VM: the snapshot providers, the
# CLI backing up from ZFS and LVM snapshots, then bare-metal recovery of a
# disk (and a boot of the recovered system).
test-vm:
	test/vm/test.sh
	test/vm/e2e.sh
	test/vm/bmr/run.sh

# The bare-metal drills (docs/recovery.md): server layouts installed in the
# VM, backed up, destroyed, recovered with recover.sh and booted.
test-bmr:
	test/vm/bmr/drills.sh $(or $(DRILLS),raid raid-stock)

# Go benchmarks of the hot paths, then peak memory against file count.
# bench-rsyncdelta and bench-peers run the side-by-side comparisons.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	bench/memory.sh $(BUILD)/backtory

# backtory's own ratios: sealed vs unsealed full, differential vs full.
bench-backtory: build
	bench/backtory.sh $(or $(BENCH_SIZE),small)

bench-rsyncdelta: build
	bench/rsyncdelta.sh

bench-peers:
	bench/peers/run.sh

# backtory over SFTP to a local sshd: upload throughput against sftp/scp,
# full and second backup against restic's sftp backend.
bench-sftp:
	bench/sftp.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

# A real backup and restore of a generated sample tree to a local directory.
demo: build
	scripts/demo.sh $(BUILD)/backtory $(BUILD)/demo

# The Debian package: build/backtory_$(DEB_VERSION)_ARCH.deb (docs/packaging.md).
# DEB_VERSION must start with a digit; the default counts the commits (-1: the
# Debian revision).
DEB_VERSION ?= 0.$(shell git rev-list --count HEAD 2>/dev/null || echo 0)-1
deb: build
	packaging/deb/build.sh $(BUILD)/backtory $(DEB_VERSION) $(BUILD)/backtory_$(DEB_VERSION)_$(shell dpkg --print-architecture).deb

# The manual pages, generated from the flag definitions and README.md.
man: build
	$(BUILD)/backtory man --readme README.md $(BUILD)/man

clean:
	rm -rf $(BUILD)
