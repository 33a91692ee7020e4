# The build is CMake's; this file only forwards to it.
#   make          optimised build; the command lands at build/ntbt
#   make test     debug build with assertions, then ctest (SANITIZE=address,undefined|thread, CC=clang)
#   make check    the same build, only the tests labelled fast (under a minute)
#   make demo     the main job
#   make install  library, headers, ntbt, ntbt.pc, man pages (PREFIX=/usr/local, DESTDIR=)
#   make uninstall  removes what the last make install put (BUILD/install_manifest.txt; same DESTDIR)
#   make fuzz     clang libFuzzer builds of tests/fuzz, each run FUZZ_SECONDS (30) from its corpus
BUILD ?= build
TEST_BUILD ?= build-test$(if $(SANITIZE),-$(subst $(comma),-,$(SANITIZE)))
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
comma := ,

.PHONY: all test check demo install uninstall man-example format format-check clean fuzz

all:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) -DBUILD_TESTING=OFF
	cmake --build $(BUILD) -j $(JOBS)

test:
	CC=$(CC) cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DNTBT_SANITIZE=$(SANITIZE)
	cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

check:
	$(MAKE) test CTEST_ARGS="-L fast $(CTEST_ARGS)"

demo: all
	./demo.sh $(BUILD)/ntbt

# tests/fuzz/README.md.  New inputs go to FUZZ_BUILD/corpus/TARGET, crashes
# to FUZZ_BUILD/crash-TARGET-*; the committed corpus is only read.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 30
FUZZ_TARGETS ?= rx_frame rx_info handshake shm_file
fuzz:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNTBT_FUZZ=ON \
		-DNTBT_SANITIZE=address,undefined
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_BUILD)/corpus/$$t || exit 1; \
		echo "make fuzz: fuzz_$$t for $(FUZZ_SECONDS) s"; \
		$(FUZZ_BUILD)/tests/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
			-print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/crash-$$t- \
			$(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t || exit 1; \
	done

# After an install or uninstall, the loader's cache must be rebuilt when the
# library's folder is one the loader searches (/usr/local/lib, ...): ldconfig,
# as root and without DESTDIR (a package runs it on the target).  Anywhere
# else the loader does not look, and we say so.
LDCONFIG ?= $(shell PATH=$$PATH:/sbin:/usr/sbin command -v ldconfig || echo ldconfig)
define ldconfig_step
	@d=$$(sed -n 's,/libntbt\.so\.1$$,,p' $(1)); \
	[ -z "$(DESTDIR)" ] && [ -n "$$d" ] || exit 0; \
	if $(LDCONFIG) -v -N 2>/dev/null | sed -n 's,^\(/[^:]*\):.*,\1,p' | \
		while read -r x; do readlink -f "$$x"; done | grep -qxF "$$(readlink -m "$$d")"; then \
		if [ "$$(id -u)" = 0 ]; then echo "$(LDCONFIG)"; $(LDCONFIG); \
		else echo "make: run ldconfig as root, so that the loader finds libntbt in $$d"; fi; \
	elif [ "$(2)" = install ]; then \
		echo "make: the loader does not search $$d: run programs with LD_LIBRARY_PATH=$$d," \
			"link them with -Wl,-rpath,$$d, or add $$d to /etc/ld.so.conf.d/ and run ldconfig"; \
	fi
endef

install: all
	cmake --install $(BUILD)
	$(call ldconfig_step,$(BUILD)/install_manifest.txt,install)

# Exactly the files of the last install from $(BUILD), and ntbt's own folders.
uninstall:
	@test -f $(BUILD)/install_manifest.txt || \
		{ echo "make uninstall: no $(BUILD)/install_manifest.txt: nothing installed from $(BUILD)" >&2; exit 1; }
	@cp $(BUILD)/install_manifest.txt $(BUILD)/uninstalled_manifest.txt
	cmake -DBUILD=$(BUILD) -P cmake/uninstall.cmake
	$(call ldconfig_step,$(BUILD)/uninstalled_manifest.txt,uninstall)
	@rm -f $(BUILD)/uninstalled_manifest.txt

# ntbt(3)'s EXAMPLES program is man/examples/ntbt-example.c: copy it in again
# after editing it (the install_example test fails until then).
man-example:
	{ sed '/^\.\\" BEGIN ntbt-example\.c/q' man/ntbt.3; \
	  man/examples/to-roff man/examples/ntbt-example.c; \
	  sed -n '/^\.\\" END ntbt-example\.c/,$$p' man/ntbt.3; } > man/ntbt.3.new
	mv man/ntbt.3.new man/ntbt.3

# kernel/ follows the kernel's own style (checkpatch), not .clang-format.
format:
	git ls-files '*.c' '*.h' ':!kernel/' | xargs clang-format -i

format-check:
	git ls-files '*.c' '*.h' ':!kernel/' | xargs clang-format --dry-run -Werror

clean:
	rm -rf build build-*
