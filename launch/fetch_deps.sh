#!/usr/bin/env bash
# Bring the libraries the build takes from pkg-config to a machine that may lack them (the GPU test
# machine has no C libyaml, and its -dev packages for the others are unknown: docs/testing.md).
#
#   launch/fetch_deps.sh [--force] [NAME ...]     (default: all; into .deps/NAME, git-ignored)
#
# NAME: libyaml jansson pcre2 utf8proc zlib libpng libjpeg. Run on a Debian/Ubuntu amd64
# development machine with network: `apt-get download` of each library's runtime and -dev packages
# (no root needed beyond apt's own cache), extracted into .deps/NAME. Every extracted .pc gets
# prefix=${pcfiledir}/../../.. so pkg-config finds the library wherever the tree is copied to.
# benchmarks/gpu_check.sh then uses a .deps/NAME only where the system lacks its pkg-config module
# (carry .deps with the device tool). A complete .deps/NAME is left alone; --force fetches again.
set -euo pipefail
cd "$(dirname "$0")/.."

# NAME|packages|pkg-config module|header
table='libyaml|libyaml-0-2 libyaml-dev|yaml-0.1|yaml.h
jansson|libjansson4 libjansson-dev|jansson|jansson.h
pcre2|libpcre2-8-0 libpcre2-dev|libpcre2-8|pcre2.h
utf8proc|libutf8proc2 libutf8proc-dev|libutf8proc|utf8proc.h
zlib|zlib1g zlib1g-dev|zlib|zlib.h
libpng|libpng16-16 libpng-dev|libpng|png.h
libjpeg|libjpeg62-turbo libjpeg62-turbo-dev|libjpeg|jpeglib.h'

force=0
names=()
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fetch_deps.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
        *) grep -q "^$arg|" <<<"$table" || { echo "fetch_deps.sh: unknown library '$arg' (see --help)" >&2; exit 2; }
           names+=("$arg") ;;
    esac
done
[ ${#names[@]} -gt 0 ] || mapfile -t names < <(cut -d'|' -f1 <<<"$table")
die() { echo "fetch_deps.sh: $*" >&2; exit 1; }

for tool in apt-get dpkg dpkg-deb pkg-config; do
    command -v "$tool" >/dev/null || die "needs $tool (a Debian/Ubuntu machine with pkg-config installed)"
done
# The packages carry x86_64 binaries for the GPU machine: fetching on another architecture would
# bring libraries that machine cannot load.
[ "$(dpkg --print-architecture)" = amd64 ] || die "this machine is not amd64; the GPU machine needs amd64 packages"
multiarch=x86_64-linux-gnu

# pkg-config that sees only DIR's modules (an empty PKG_CONFIG_LIBDIR hides the system's copies), plus
# the other .deps folders (libpng's .pc requires zlib's).
pkgcfg() {
    local dir=$1 path
    shift
    path=$(realpath -m "$dir")/usr/lib/$multiarch/pkgconfig
    for other in .deps/*/usr/lib/$multiarch/pkgconfig; do [ -d "$other" ] && path+=":$(realpath "$other")"; done
    PKG_CONFIG_PATH="$path" PKG_CONFIG_LIBDIR='' pkg-config "$@"
}

# Complete = the header, the relocated .pc, and pkg-config resolving the module inside DIR.
complete() { # DIR MODULE HEADER
    [ -f "$1/usr/include/$3" ] || [ -f "$1/usr/include/$multiarch/$3" ] || return 1
    grep -q '^prefix=${pcfiledir}/' "$1/usr/lib/$multiarch/pkgconfig/$2.pc" 2>/dev/null &&
        pkgcfg "$1" --cflags --libs "$2" >/dev/null 2>&1
}

fetch() { # NAME PACKAGES MODULE HEADER
    local name=$1 pkgs=$2 mod=$3 header=$4 dir=.deps/$1 tmp stage
    if [ "$force" = 0 ] && complete "$dir" "$mod" "$header"; then
        echo "fetch_deps.sh: $dir already holds $mod $(pkgcfg "$dir" --modversion "$mod")"
        return
    fi
    tmp=$(mktemp -d)
    # apt drops to the _apt user to download, which cannot write into root's private temp directory.
    local sandbox=()
    [ "$(id -u)" -ne 0 ] || sandbox=(-o APT::Sandbox::User=root)
    # shellcheck disable=SC2086 # the package list splits on purpose
    (cd "$tmp" && apt-get "${sandbox[@]}" download $pkgs) >"$tmp/apt.log" 2>&1 ||
        { cat "$tmp/apt.log" >&2; rm -rf "$tmp"; die "apt-get download $pkgs failed (no network? try apt-get update)"; }
    # Extract into a staging folder beside DIR, then swap it in: an interrupted run leaves DIR as it was.
    mkdir -p .deps
    stage=$(mktemp -d "$dir.new.XXXXXX")
    for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$stage" || { rm -rf "$tmp" "$stage"; die "dpkg-deb -x $deb failed"; }; done
    rm -rf "$tmp"
    [ -f "$stage/usr/lib/$multiarch/pkgconfig/$mod.pc" ] ||
        { rm -rf "$stage"; die "$pkgs hold no usr/lib/$multiarch/pkgconfig/$mod.pc (package layout changed?)"; }
    # pkgconfig/ -> x86_64-linux-gnu/ -> lib/ -> usr/: the prefix relative to each .pc file itself.
    sed -i 's|^prefix=.*|prefix=${pcfiledir}/../../..|' "$stage/usr/lib/$multiarch/pkgconfig/"*.pc
    rm -rf "$dir"
    mv "$stage" "$dir"
    complete "$dir" "$mod" "$header" ||
        die "extracted into $dir, but pkg-config does not resolve $mod there: $(pkgcfg "$dir" --cflags --libs "$mod" 2>&1)"
    echo "fetch_deps.sh: $mod $(pkgcfg "$dir" --modversion "$mod") in $dir"
}

# zlib before libpng: libpng's .pc requires it.
for name in "${names[@]}"; do
    IFS='|' read -r n pkgs mod header < <(grep "^$name|" <<<"$table")
    fetch "$n" "$pkgs" "$mod" "$header"
done
echo "fetch_deps.sh: $(du -sh .deps | cut -f1) in .deps (carry it to the GPU machine: benchmarks/gpu_check.sh uses it)"
