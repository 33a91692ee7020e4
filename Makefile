# The build is CMake's; this file only forwards to it.
#   make          optimised build; the command lands at build/ntbt
#   make test     debug build with assertions, then ctest (SANITIZE=address,undefined|thread, CC=clang)
#   make demo     the main job
#   make install  library, headers, ntbt, ntbt.pc (PREFIX=/usr/local)
BUILD ?= build
TEST_BUILD ?= build-test$(if $(SANITIZE),-$(subst $(comma),-,$(SANITIZE)))
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
comma := ,

.PHONY: all test demo install format format-check clean

all:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) -DBUILD_TESTING=OFF
	cmake --build $(BUILD) -j $(JOBS)

test:
	CC=$(CC) cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DNTBT_SANITIZE=$(SANITIZE)
	cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

demo: all
	./demo.sh $(BUILD)/ntbt

install: all
	cmake --install $(BUILD)

# kernel/ follows the kernel's own style (checkpatch), not .clang-format.
format:
	git ls-files '*.c' '*.h' ':!kernel/' | xargs clang-format -i

format-check:
	git ls-files '*.c' '*.h' ':!kernel/' | xargs clang-format --dry-run -Werror

clean:
	rm -rf build build-*
