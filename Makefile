# The two commands of the quick start (README.md):
#   make demo   installs dependencies, builds, and runs arche's walk-through
#   make test   installs dependencies, builds, and runs every test
# Fuzzing (docs/testing.md):
#   make fuzz [FUZZ_TARGET=all] [FUZZ_MINUTES=5]   a campaign (scripts/fuzz.sh), corpora in /var/tmp/arche-fuzz
#   make fuzz-coverage                             line coverage of each target over its corpus
#   make test-sanitize                             the whole suite under ASan + UBSan (clang, build-sanitize/)
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

.PHONY: all deps deps-build configure build test test-sanitize demo bench install deb clean fuzz fuzz-coverage

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

# The whole tree and its tests with AddressSanitizer and UndefinedBehaviorSanitizer
# (clang, -O1), in a build directory of its own; the fuzz targets are left out (they
# carry ASan already). Any report fails the test that caused it.
SANITIZE_BUILD ?= build-sanitize
SANITIZE_FLAGS := -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DARCHE_SANITIZE=ON -DARCHE_FUZZ_TESTS=OFF \
  $(if $(CCACHE),-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
SANITIZE_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitize/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
test-sanitize: deps-build
	cmake -S . -B $(SANITIZE_BUILD) $(SANITIZE_FLAGS)
	cmake --build $(SANITIZE_BUILD) -j $(JOBS)
	$(SANITIZE_ENV) ctest --test-dir $(SANITIZE_BUILD) --output-on-failure -j $(JOBS)

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
