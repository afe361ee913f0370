#!/usr/bin/env bash
# Make the working tree fit the device tool's 64 MiB (tracked + untracked-not-ignored files + carried paths), and
# undo it afterwards. The shipped weights (weights/*.pt, ~5-7 MB per model and rate) and .traindata (39 MB) outgrew
# that limit, so before a device call what the call does not need is moved aside (never deleted) and put back after
# it: the weights other than the ones it starts from, and the Kodak images after the first 4 (the call's export then
# checks on 4 images: KODAK_LIMIT=4; the full Kodak evaluation runs here, `invlab evaluate`).
#
#   bash scripts/gpu/slim.sh [STEM ...]    # set aside all but weights/STEM.pt and kodim01-04; print the travelling size
#   bash scripts/gpu/slim.sh --restore     # move them back (a file changed meanwhile is never overwritten)
#   bash scripts/gpu/slim.sh --size        # only print the travelling size
#
# STEM: the weight file a call starts from, e.g. msinn-mini or anfic-mini-noctx-q2. The files go to
# $INVLAB_ASIDE (default ~/.cache/invlab/weights-aside). Carried folders counted: .traindata and .whl.
set -euo pipefail
cd "$(dirname "$0")/../.."
aside=${INVLAB_ASIDE:-$HOME/.cache/invlab/weights-aside}
limit=$((64 * 1024 * 1024))

travelling_bytes() {  # the files the device tool sends: tracked or untracked-not-ignored (present), plus carried folders
  { git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null || true
    for carried in .traindata .whl; do
      if [ -d "$carried" ]; then find "$carried" -type f -printf '%s\n'; fi
    done; } |
    awk '{ total += $1 } END { print total + 0 }'
}

report() {
  local bytes
  bytes=$(travelling_bytes)
  printf 'slim: the working tree that travels (with .traindata, .whl): %.1f MiB of %d MiB\n' \
    "$(echo "$bytes / 1048576" | bc -l)" $((limit / 1048576))
  if (( bytes > limit )); then
    echo "slim: still too large: set aside more (bash scripts/gpu/slim.sh STEM) or carry less" >&2
    return 1
  fi
}

case "${1:-}" in
  --size) report; exit ;;
  --restore)
    shopt -s nullglob
    kept=0
    for file in "$aside"/*.pt "$aside"/kodak/*.png; do
      target=weights/$(basename "$file")
      [[ $file == */kodak/* ]] && target=data/kodak/$(basename "$file")
      if [ -e "$target" ] && ! cmp -s "$file" "$target"; then
        echo "slim: $target changed since it was set aside; left $file where it is (compare and move it yourself)" >&2
        kept=1
        continue
      fi
      mv -f "$file" "$target"
    done
    echo "slim: weights and Kodak images restored from $aside"
    exit $kept ;;
  -h|--help) sed -n '2,13p' "$0"; exit ;;
esac

mkdir -p "$aside"
keep=" $* "
moved=0
for file in weights/*.pt; do
  stem=$(basename "$file" .pt)
  [[ $keep == *" $stem "* ]] && continue
  if [ -e "$aside/$stem.pt" ] && ! cmp -s "$file" "$aside/$stem.pt"; then
    echo "slim: $aside/$stem.pt already holds a different file; restore or remove it first" >&2
    exit 1
  fi
  mv -f "$file" "$aside/"
  moved=$((moved + 1))
done
mkdir -p "$aside/kodak"
images=0
for file in data/kodak/kodim*.png; do
  number=$(basename "$file" .png); number=${number#kodim}
  (( 10#$number <= 4 )) && continue
  if [ -e "$aside/kodak/$(basename "$file")" ] && ! cmp -s "$file" "$aside/kodak/$(basename "$file")"; then
    echo "slim: $aside/kodak/$(basename "$file") already holds a different file; restore or remove it first" >&2
    exit 1
  fi
  mv -f "$file" "$aside/kodak/"
  images=$((images + 1))
done
echo "slim: $images Kodak images set aside (the call's export: KODAK_LIMIT=4)"
echo "slim: $moved weight files set aside in $aside (kept: ${*:-none}); put them back with: bash scripts/gpu/slim.sh --restore"
report
