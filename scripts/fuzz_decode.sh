#!/usr/bin/env bash
# Builds the image-decoding fuzz target with clang (libFuzzer + AddressSanitizer + UBSan) and
# runs it from a seed corpus of small valid and broken images. Exits non-zero if the fuzzer finds
# a crash; the reproducer is left in build-fuzz/.
#
#   FUZZ_RUNS=N      executions to run (default 20000); with the fixed seed, a repeatable run:
#                    what CI does, so a CI result never depends on the machine's speed or luck
#   FUZZ_SECONDS=S   run for S seconds instead, with a random seed: a search for new bugs
#
# The target is the library's decoding path as it ships: JPEG goes to the system's libjpeg-turbo
# (linked as Debian builds it, so its own code is not instrumented: the fuzzer drives it through
# our wrapper and catches its crashes, hangs and any bad image it hands back, but sees no coverage
# inside it; libjpeg-turbo is fuzzed upstream in OSS-Fuzz), every other format to stb_image, which
# is compiled here with the sanitizers.
#
# stb_image is compiled with -fwrapv: on corrupt input its integer arithmetic overflows, which is
# undefined behaviour in C++ unless wrapping is requested. The library build does the same
# (data/CMakeLists.txt), so what is fuzzed is what ships, and UBSan's overflow check is dropped
# for that one file only: with -fwrapv it would report defined behaviour.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build-fuzz
mkdir -p "$OUT/corpus"
if ! command -v clang++ >/dev/null; then
  echo "fuzz_decode: clang++ is missing (bash scripts/setup.sh installs it)" >&2
  exit 1
fi
SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
CXX="clang++ -std=c++20 -O1 -g -I."
$CXX $SAN -fwrapv -fno-sanitize=signed-integer-overflow -w -c data/stb_impl.cpp -o "$OUT/stb_impl.o"
$CXX $SAN -c data/decode.cpp -o "$OUT/decode.o"
$CXX $SAN -c data/files.cpp -o "$OUT/files.o"
$CXX $SAN -c tests/data/fuzz_decode.cpp -o "$OUT/fuzz_decode.o"
$CXX -fsanitize=fuzzer,address,undefined "$OUT"/{fuzz_decode,decode,files,stb_impl}.o \
  $(pkg-config --libs libturbojpeg) -o "$OUT/fuzz_decode"
# Seeds: hand-made headers of the common formats, and two real images if the shared data set is
# beside us.
printf '\x89PNG\r\n\x1a\n' > "$OUT/corpus/png-header"
printf 'BM' > "$OUT/corpus/bmp-header"
printf '\xff\xd8\xff\xe0' > "$OUT/corpus/jpeg-header"
for f in ../shared/data/selfie2anime/anime/anime_0000.jpg ../shared/data/selfie2anime/selfie/selfie_0000.jpg; do
  [ -f "$f" ] && cp "$f" "$OUT/corpus/"
done
if [ -n "${FUZZ_SECONDS:-}" ]; then
  LIMIT=(-max_total_time="$FUZZ_SECONDS")
else
  LIMIT=(-runs="${FUZZ_RUNS:-20000}" -seed=1)
fi
status=0
"$OUT/fuzz_decode" "$OUT/corpus" "${LIMIT[@]}" -max_len=65536 \
  -rss_limit_mb=2048 -artifact_prefix="$OUT/" -print_final_stats=1 >"$OUT/fuzz.log" 2>&1 || status=$?
grep -E "ERROR|runtime error|SUMMARY|Test unit written" "$OUT/fuzz.log" || true
tail -6 "$OUT/fuzz.log"
exit $status
