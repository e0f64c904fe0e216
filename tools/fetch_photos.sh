#!/usr/bin/env bash
# fetch_photos.sh - builds the photo set for checking that an INT8-quantised
# ResNet answers like the FP32 one: real camera photographs (animals, people,
# objects, food, landscapes, buildings) that ship inside Debian bookworm
# packages, listed in tests/fixtures/photos.tsv. No labels are involved.
#
#   tools/fetch_photos.sh OUT_DIR [calib|eval|ci-calib|ci-eval|all]   (default: all)
#
# Splits (the manifest's `split` and `ci` columns):
#   calib     64 photos for INT8 calibration           (split == calib)
#   eval      the rest, for the FP32/INT8 comparison   (split == eval)
#   ci-calib  16 of the calib photos, from small packages (ci == ci-calib)
#   ci-eval   48 of the eval photos, from small packages  (ci == ci-eval)
#   all       all four of the above
# calib and eval are disjoint, and so are ci-calib and ci-eval.
#
# Each photo lands in OUT_DIR/<split>/<package>__<name>.jpg, where <name> is
# the file's basename without its extension (for KDE wallpaper layouts,
# .../<Wallpaper>/contents/images/<WxH>.jpg, it is <Wallpaper>). JPEGs are
# copied byte for byte; the few PNG photos are converted to RGB JPEG,
# quality 95, with /usr/bin/python3 and PIL (Debian package python3-pil).
# Files named *__*.jpg in OUT_DIR/<split>/ that the manifest no longer
# lists for that split are removed, so re-running keeps splits disjoint.
#
# The .deb files come from Debian's mirrors through `apt-get download` (no
# root needed, nothing is installed) into ${PHOTO_CACHE:-~/.cache/resnetd-photos}/debs
# and are reused when already there; only the listed files are unpacked
# (dpkg-deb --fsys-tarfile | tar), under the cache's tree/ folder.
# Idempotent. Needs apt-get, dpkg-deb, tar, coreutils, and python3-pil for
# the conversions. When apt's package lists are missing it runs
# `apt-get update` if root, and otherwise asks you to.
#
# Manifest columns (tab-separated, one header line): split (calib|eval),
# package, path_in_package, note, ci (ci-calib|ci-eval|-).
# Environment: PHOTO_CACHE (cache folder), PHOTO_MANIFEST (manifest path),
# PHOTO_PYTHON (python with PIL, default /usr/bin/python3).
set -euo pipefail

prog=fetch_photos.sh
usage() { sed -n '7p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "$prog: $*" >&2; exit 1; }

case "${1:-}" in
-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
'') usage >&2; exit 2 ;;
esac
out=$1
which=${2:-all}
case "$which" in
calib|eval|ci-calib|ci-eval) splits=("$which") ;;
all) splits=(calib eval ci-calib ci-eval) ;;
*) usage >&2; exit 2 ;;
esac
[ $# -le 2 ] || { usage >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
manifest=${PHOTO_MANIFEST:-$here/../tests/fixtures/photos.tsv}
cache=${PHOTO_CACHE:-${HOME:-/tmp}/.cache/resnetd-photos}
python=${PHOTO_PYTHON:-/usr/bin/python3}
[ -f "$manifest" ] || die "manifest $manifest not found"
command -v apt-get >/dev/null || die "apt-get not found (this needs a Debian system)"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found"

start=$(date +%s)

# --- read and check the manifest --------------------------------------------
# Columns: split package path_in_package note ci; first line is the header.
# Output rows: outsplit \t package \t path \t outname
rows=$(awk -F'\t' -v want="${splits[*]}" '
    NR == 1 { if ($1 != "split" || $2 != "package" || $3 != "path_in_package") { print "bad header" > "/dev/stderr"; exit 1 } next }
    /^[ \t]*$/ || /^#/ { next }
    {
        if (NF < 5) { printf("line %d: expected 5 tab-separated columns\n", NR) > "/dev/stderr"; bad = 1; next }
        s = $1; p = $2; f = $3; c = $5
        if (s != "calib" && s != "eval") { printf("line %d: split must be calib or eval\n", NR) > "/dev/stderr"; bad = 1 }
        if (c != "-" && c != "" && c != "ci-" s) { printf("line %d: ci mark %s does not match split %s\n", NR, c, s) > "/dev/stderr"; bad = 1 }
        if (f !~ /^\//) { printf("line %d: path must be absolute\n", NR) > "/dev/stderr"; bad = 1 }
        if ((p SUBSEP f) in seen) { printf("line %d: %s %s listed twice\n", NR, p, f) > "/dev/stderr"; bad = 1 }
        seen[p SUBSEP f] = 1
        n = split(f, parts, "/")
        base = parts[n]
        if (n >= 4 && parts[n-1] == "images" && parts[n-2] == "contents") base = parts[n-3]
        else sub(/\.[^.]*$/, "", base)
        name = p "__" base ".jpg"
        if (name in names) { printf("line %d: output name %s is not unique\n", NR, name) > "/dev/stderr"; bad = 1 }
        names[name] = 1
        nw = split(want, w, " ")
        for (i = 1; i <= nw; i++)
            if (w[i] == s || w[i] == c) print w[i] "\t" p "\t" f "\t" name
    }
    END { exit bad }' "$manifest") || die "manifest $manifest is malformed"
[ -n "$rows" ] || die "no rows selected from $manifest"

mapfile -t packages < <(printf '%s\n' "$rows" | cut -f2 | sort -u)

# --- download the .debs (reused when cached) ------------------------------
debdir=$cache/debs
mkdir -p "$debdir"

cached_deb() {   # newest cached .deb of package $1 that dpkg-deb can read
    local f
    f=$(find "$debdir" -maxdepth 1 -name "${1}_*.deb" -printf '%f\n' | sort -V | tail -n 1)
    [ -n "$f" ] && dpkg-deb --info "$debdir/$f" >/dev/null 2>&1 && echo "$debdir/$f"
}

missing=()
for p in "${packages[@]}"; do
    cached_deb "$p" >/dev/null || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    apt_opts=(-q)
    # as root, apt drops to the _apt user for downloads, which cannot write
    # to a folder in root's home; download as root instead
    [ "$(id -u)" = 0 ] && apt_opts+=(-o APT::Sandbox::User=root)
    if ! apt-cache show --no-all-versions "${missing[@]}" >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then
            echo "$prog: apt package lists incomplete; running apt-get update" >&2
            apt-get -q update >&2
        else
            die "apt-cache cannot find some of: ${missing[*]}; run 'sudo apt-get update' first"
        fi
    fi
    echo "$prog: downloading ${#missing[@]} package(s): ${missing[*]}" >&2
    (cd "$debdir" && apt-get "${apt_opts[@]}" download "${missing[@]}") >&2 ||
        die "apt-get download failed"
fi

# --- unpack only the listed files -------------------------------------------
treeroot=$cache/tree
for p in "${packages[@]}"; do
    deb=$(cached_deb "$p") || die "no usable .deb for $p in $debdir"
    dir=$treeroot/$p
    mapfile -t files < <(awk -F'\t' -v p="$p" 'NR > 1 && $2 == p { print $3 }' "$manifest" | sort -u)
    # the stamp names the .deb the tree came from; a new .deb means a fresh tree
    if [ "$(cat "$dir/.from-deb" 2>/dev/null)" != "$(basename "$deb")" ]; then
        rm -rf "$dir"
    fi
    need=()
    for f in "${files[@]}"; do [ -f "$dir$f" ] || need+=(".$f"); done
    if [ ${#need[@]} -gt 0 ]; then
        mkdir -p "$dir"
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" -- "${need[@]}" ||
            die "could not extract ${need[*]} from $deb"
        basename "$deb" > "$dir/.from-deb"
    fi
done

# --- copy / convert into OUT_DIR/<split>/ -----------------------------------
copied=0 unchanged=0
declare -A expected=()
convert_list=$(mktemp)
trap 'rm -f "$convert_list"' EXIT
for s in "${splits[@]}"; do mkdir -p "$out/$s"; done
while IFS=$'\t' read -r s p f name; do
    src=$treeroot/$p$f
    dst=$out/$s/$name
    expected[$s/$name]=1
    [ ! -L "$src" ] || die "$p: $f is a symlink in the package; list its target instead"
    [ -f "$src" ] || die "$p: $f missing after extraction"
    case "${f,,}" in
    *.jpg|*.jpeg)
        if cmp -s "$src" "$dst"; then
            unchanged=$((unchanged + 1))
        else
            cp "$src" "$dst.tmp" && mv -f "$dst.tmp" "$dst"
            copied=$((copied + 1))
        fi ;;
    *) printf '%s\t%s\n' "$src" "$dst" >> "$convert_list" ;;
    esac
done <<< "$rows"

converted=0
if [ -s "$convert_list" ]; then
    "$python" -c 'import PIL' 2>/dev/null ||
        die "$python cannot import PIL; install python3-pil (apt-get install python3-pil)"
    converted=$("$python" -c '
import io, os, sys
from PIL import Image
n = 0
for line in open(sys.argv[1]):
    src, dst = line.rstrip("\n").split("\t")
    buf = io.BytesIO()
    with Image.open(src) as im:
        im.convert("RGB").save(buf, "JPEG", quality=95)
    data = buf.getvalue()
    try:
        with open(dst, "rb") as f:
            if f.read() == data:
                continue
    except FileNotFoundError:
        pass
    with open(dst + ".tmp", "wb") as f:
        f.write(data)
    os.replace(dst + ".tmp", dst)
    n += 1
print(n)' "$convert_list") || die "PNG to JPEG conversion failed"
fi

# drop photos that the manifest no longer lists for a split
removed=0
for s in "${splits[@]}"; do
    while IFS= read -r -d '' f; do
        if [ -z "${expected[$s/${f##*/}]:-}" ]; then
            rm -f "$f"; removed=$((removed + 1))
        fi
    done < <(find "$out/$s" -maxdepth 1 -type f -name '*__*.jpg' -print0)
done

for s in "${splits[@]}"; do
    n=$(find "$out/$s" -maxdepth 1 -type f -name '*__*.jpg' | wc -l)
    want=$(printf '%s\n' "$rows" | awk -F'\t' -v s="$s" '$1 == s' | wc -l)
    [ "$n" -eq "$want" ] || die "$out/$s has $n photos, expected $want"
    echo "$prog: $out/$s: $n photos"
done
echo "$prog: $copied copied, $converted converted, $unchanged unchanged, $removed removed;" \
     "${#packages[@]} packages, $(du -sh "$debdir" | cut -f1) of .debs in $debdir;" \
     "$(( $(date +%s) - start ))s"
