# The two commands of the quick start (README.md):
#   make demo   installs dependencies, builds, and runs arche's walk-through
#   make test   installs dependencies, builds, and runs every test
# Fuzzing (docs/testing.md):
#   make fuzz [FUZZ_TARGET=all] [FUZZ_MINUTES=5]   a campaign (scripts/fuzz.sh), corpora in /var/tmp/arche-fuzz
#   make fuzz-coverage                             line coverage of each target over its corpus
# Packaging:
#   make install [PREFIX=/usr/local] [DESTDIR=]   installs the built tree
#   make deb                                      a Debian package (dpkg-buildpackage -us -uc -b)
BUILD ?= build
JOBS ?= $(shell nproc)
PREFIX ?= /usr/local
DESTDIR ?=
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# ccache, when installed, as the compiler launcher: rebuilds after a branch switch are cheap.
CCACHE := $(shell command -v ccache 2>/dev/null)
CMAKE_FLAGS := -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  $(if $(CCACHE),-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)

.PHONY: all deps deps-build configure build test demo bench install deb clean fuzz fuzz-coverage

all: build

deps:
	$(SUDO) ./scripts/install-deps.sh

deps-build:
	$(SUDO) ./scripts/install-deps.sh --build

configure: deps-build
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: deps
	$(MAKE) build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	./scripts/check-clean-tree.sh

demo: deps
	$(MAKE) build
	./scripts/demo.sh $(BUILD)/cli/arche $(BUILD)/tests/hv/guest/guest.elf

bench: deps
	$(MAKE) build
	./bench/convert.sh $(BUILD)/cli/arche
	./bench/backup.sh $(BUILD)/cli/arche
	./bench/raid.sh $(BUILD)/cli/arche $(BUILD)/bench/raid_io
	./bench/boot.sh $(BUILD)/cli/arche $(BUILD)/tests/hv/guest/guest.elf

# The arche binary of the build makes some seeds (vmdk_fuzz, mirror_fuzz).
FUZZ_TARGET ?= all
FUZZ_MINUTES ?= 5
fuzz: deps
	$(MAKE) build
	ARCHE=$(CURDIR)/$(BUILD)/cli/arche ./scripts/fuzz.sh $(FUZZ_TARGET) $(FUZZ_MINUTES)

fuzz-coverage: deps
	$(MAKE) build
	ARCHE=$(CURDIR)/$(BUILD)/cli/arche ./scripts/fuzz-coverage.sh $(filter-out all,$(FUZZ_TARGET))

install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

# The package is built from scratch in debian's own build directory, without the
# tests (debian/rules); the .deb and -dbgsym .deb land in the parent directory.
deb: deps-build
	dpkg-buildpackage -us -uc -b

clean:
	rm -rf $(BUILD)
