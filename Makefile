# The two commands of the quick start (README.md):
#   make demo   installs dependencies, builds, and runs arche's walk-through
#   make test   installs dependencies, builds, and runs every test
BUILD ?= build
JOBS ?= $(shell nproc)
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: all deps configure build test demo bench clean

all: build

deps:
	$(SUDO) ./scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

demo: build
	./scripts/demo.sh $(BUILD)/cli/arche $(BUILD)/tests/hv/guest/guest.elf

bench: build
	./bench/convert.sh $(BUILD)/cli/arche
	./bench/backup.sh $(BUILD)/cli/arche
	./bench/raid.sh $(BUILD)/cli/arche $(BUILD)/bench/raid_io
	./bench/boot.sh $(BUILD)/cli/arche $(BUILD)/tests/hv/guest/guest.elf

clean:
	rm -rf $(BUILD)
