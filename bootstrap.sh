#!/usr/bin/env bash
# One command per job on a fresh Debian 12 machine:
#   ./bootstrap.sh demo   install, build, transcode a sample with the shipped model
#   ./bootstrap.sh test   install, build, run every test (plain, then ASan+UBSan),
#                         then each fuzz target for a bounded time
#   ./bootstrap.sh fuzz [SECONDS]   only the fuzz targets (default 30 s each)
#   ./bootstrap.sh corpus           rebuild the training/validation corpus (train/data/)
#   ./bootstrap.sh quality [ARGS]   the quality benchmark (bench/quality ARGS) on the
#                         validation split (run corpus first)
# Each step installs what it needs with apt-get; nothing is downloaded
# from anywhere else.
set -euo pipefail
cd "$(dirname "$0")"

BUILD_PACKAGES=(build-essential meson ninja-build pkg-config libsndfile1-dev libfftw3-dev
                libsoxr-dev libcjson-dev libxxhash-dev check portaudio19-dev libsodium-dev)
TEST_PACKAGES=(sox clang libclang-rt-14-dev valgrind python3-numpy python3-scipy slurm-wlm
               munge time)

install() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build() { # build DIR [meson options...]
    local dir=$1; shift
    [ -f "$dir/build.ninja" ] || meson setup "$dir" "$@"
    ninja -C "$dir"
}

fuzz() {
    local seconds=${1:-30}
    install "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    CC=clang build build-fuzz -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined \
        -Db_lundef=false
    # libFuzzer keeps the coverage counters of every object ever loaded; the
    # plugin host's folder scan opens and closes plugin objects it does not
    # need, and a closed object's counters crash libFuzzer itself.  The stream
    # target (the only one that loads a model) sees only the plugins it uses.
    local plugins; plugins=$(mktemp -d)
    ln -s "$PWD"/build-fuzz/plugins/tokvox_{stftcodec,vq}.so "$plugins/"
    export TOKVOX_PLUGIN_PATH=$plugins
    for target in tvx safetensors audio npy stream manifest; do
        local work; work=$(mktemp -d)
        echo "fuzz_$target: ${seconds} s"
        # new inputs go to the scratch folder, seeds and regressions stay as committed
        if ! build-fuzz/tests/fuzz/fuzz_$target -max_total_time="$seconds" -timeout=10 \
                -print_final_stats=1 "$work" "tests/fuzz/corpus/$target" \
                "tests/fuzz/regressions/$target" >"$work.log" 2>&1; then
            tail -40 "$work.log"
            echo "fuzz_$target failed: a crashing input is in the current folder (crash-*)"
            exit 1
        fi
        grep -E "^stat::number_of_executed_units" "$work.log"
        rm -rf "$work" "$work.log"
    done
}

# The end-to-end commands under valgrind memcheck on a short file: zero errors.
valgrind_e2e() {
    local work; work=$(mktemp -d)
    sox samples/speech_child.wav -r 22050 -c 2 "$work/in.wav" trim 0 1
    local vg=(valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite,indirect)
    "${vg[@]}" build/apps/tokvox transcode "$work/in.wav" "$work/t.wav" --quiet
    "${vg[@]}" build/apps/tokvox encode "$work/in.wav" "$work/a.tvx" --quiet
    "${vg[@]}" build/apps/tokvox decode "$work/a.tvx" "$work/a.flac"
    "${vg[@]}" build/apps/tokvox info "$work/a.tvx" >/dev/null
    "${vg[@]}" build/apps/tokvox plugins >/dev/null
    mkdir "$work/in" && cp "$work/in.wav" "$work/in/a.wav"
    build/apps/tokvox tokenize "$work/in" -o "$work/tok" --layout delay --quiet >/dev/null
    "${vg[@]}" build/apps/tokvox detokenize "$work/tok/a.npy" "$work/d.wav" --quiet
    rm -rf "$work"
    echo "valgrind: end-to-end commands clean"
}

case "${1:-}" in
demo)
    install "${BUILD_PACKAGES[@]}"
    build build
    build/apps/tokvox info
    build/apps/tokvox transcode samples/speech_en.wav speech_en.tokvox.wav --codebooks 4
    echo "listen: speech_en.tokvox.wav (2 kbps) against samples/speech_en.wav"
    ;;
test)
    install "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    build build
    meson test -C build --print-errorlogs | tee build/test-summary.txt
    examples/run.sh build   # the examples, against the installed library via pkg-config
    build build-asan -Db_sanitize=address,undefined -Db_lundef=false
    # not the soak: memory flatness under ASan's allocator means nothing
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C build-asan --print-errorlogs --no-suite soak | tee build-asan/test-summary.txt
    # the plugin conformance suite under ThreadSanitizer, so the thread tags
    # ([any-thread], [session-thread]) are checked for races, not only for
    # equal results; only its targets (-O0: a minute on 2 cores)
    [ -f build-tsan/build.ninja ] ||
        meson setup build-tsan -Db_sanitize=thread -Db_lundef=false -Doptimization=0
    ninja -C build-tsan conformance
    TSAN_OPTIONS=halt_on_error=1 meson test -C build-tsan --no-rebuild --print-errorlogs \
        --suite conformance | tee build-tsan/test-summary.txt
    valgrind_e2e
    fuzz "${2:-30}"
    # every step above stops the script on failure, so reaching here means all passed
    passed=$(cat build/test-summary.txt build-asan/test-summary.txt build-tsan/test-summary.txt |
        awk '/^Ok:/ {n += $2} END {print n}')
    echo "$passed passed, 0 failed (plain, ASan+UBSan and TSan conformance runs; fuzz targets clean)"
    ;;
fuzz)
    fuzz "${2:-30}"
    ;;
corpus)
    install python3-torch python3-numpy python3-soundfile libopenblas0-openmp ffmpeg \
        asterisk-core-sounds-{en,es,fr,it,ru}-g722 asterisk-moh-opsound-g722 \
        fillets-ng-data-cs fillets-ng-data-nl
    /usr/bin/python3 train/data/build_corpus.py
    ;;
quality)
    install "${BUILD_PACKAGES[@]}" python3-numpy python3-scipy python3-matplotlib \
        opus-tools codec2 speex sox
    build build
    shift
    bench/quality "$@"
    ;;
*)
    sed -n '2,11p' "$0"
    exit 2
    ;;
esac
