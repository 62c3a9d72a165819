#!/usr/bin/env bash
# Install the system packages mmupt needs to build and test. Idempotent: only missing packages are
# installed, so running it again is quick. Debian 12 / Ubuntu 22.04+ (apt-get); elsewhere it lists
# what to install and fails.
#
#   launch/setup.sh            build + test dependencies
#   launch/setup.sh --fuzz     also clang and its sanitizer runtime, for launch/fuzz.sh
#   launch/setup.sh --slurm    also slurm-wlm and munge, for the Slurm tests (launch/test.sh asks
#                              for them; nothing is started or enabled: the tests run their own daemons)
#
# The CUDA toolkit (nvcc, cuBLAS, cuDNN, NCCL) is not installed here: the build uses it when it is
# present in /usr/local/cuda and builds the CPU backend alone otherwise.
set -euo pipefail

pkgs=(gcc g++ meson ninja-build pkg-config libyaml-dev libhdf5-dev libopenmpi-dev openmpi-bin libjansson-dev
      libopenblas-dev libpcre2-dev libutf8proc-dev libpng-dev libjpeg-dev)
for arg in "$@"; do
    case "$arg" in
        --fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
        --slurm) pkgs+=(slurm-wlm munge) ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all ${#pkgs[@]} system packages present"
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "setup: no apt-get here; install these (or your distribution's equivalents) by hand:" >&2
    echo "  ${missing[*]}" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
