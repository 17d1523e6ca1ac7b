#!/usr/bin/env bash
# Builds the image-decoding fuzz target with clang (libFuzzer + AddressSanitizer + UBSan) and
# runs it for FUZZ_SECONDS (default 30) from a seed corpus of small valid and broken images.
# Exits non-zero if the fuzzer finds a crash; the reproducer is left in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${FUZZ_SECONDS:-30}"
OUT=build-fuzz
mkdir -p "$OUT/corpus"
if ! command -v clang++ >/dev/null; then
  echo "fuzz_decode: clang++ is missing (bash scripts/setup.sh installs it)" >&2
  exit 1
fi
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I. tests/data/fuzz_decode.cpp data/decode.cpp data/stb_impl.cpp -o "$OUT/fuzz_decode"
# Seeds: hand-made headers of the common formats, and two real images if the shared data set is
# beside us.
printf '\x89PNG\r\n\x1a\n' > "$OUT/corpus/png-header"
printf 'BM' > "$OUT/corpus/bmp-header"
printf '\xff\xd8\xff\xe0' > "$OUT/corpus/jpeg-header"
for f in ../shared/data/selfie2anime/anime/anime_0000.jpg ../shared/data/selfie2anime/selfie/selfie_0000.jpg; do
  [ -f "$f" ] && cp "$f" "$OUT/corpus/"
done
status=0
"$OUT/fuzz_decode" "$OUT/corpus" -max_total_time="$SECONDS_TO_RUN" -max_len=65536 \
  -rss_limit_mb=2048 -artifact_prefix="$OUT/" -print_final_stats=1 >"$OUT/fuzz.log" 2>&1 || status=$?
grep -E "ERROR|runtime error|SUMMARY|Test unit written" "$OUT/fuzz.log" || true
tail -6 "$OUT/fuzz.log"
exit $status
