#!/usr/bin/env bash
# Download the rock-paper-scissors dataset (the public zips of its author) for typenet.
#
#   scripts/download_data.sh [DEST]
#   scripts/download_data.sh --check [DEST]   # exit 0 if DEST holds the whole dataset
#
# DEST defaults to $TYPENET_DATA/data when TYPENET_DATA is set, else ../shared/data beside
# the checkout (where scripts/demo.sh and the tests look). The script leaves
# DEST/rps/{rock,paper,scissors}/ (train, 840 PNG per class) and
# DEST/rps-test-set/{rock,paper,scissors}/ (test, 124 PNG per class), the layout that
# typenet::data::load("rock_paper_scissors") reads (with LoadOptions::dir = DEST, or by
# default from $TYPENET_DATA/data). It is idempotent: a split already complete (or the
# shared copy DEST/rock_paper_scissors/{train,test}) is not downloaded again, and a
# download interrupted half-way is started again from scratch, never used.
#
# Needs curl or wget, and unzip (or python3). Without a network it stops with a message
# saying which file to fetch by hand and where to put it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE_URL=${TYPENET_RPS_URL:-https://storage.googleapis.com/download.tensorflow.org/data}
check_only=0
if [ "${1:-}" = "--check" ]; then check_only=1; shift; fi
if [ $# -gt 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
dest=${1:-}
if [ -z "$dest" ]; then
  if [ -n "${TYPENET_DATA:-}" ]; then dest=$TYPENET_DATA/data; else dest=$ROOT/../shared/data; fi
fi

say() { printf 'download_data: %s\n' "$*"; }
fail() { printf 'download_data: error: %s\n' "$*" >&2; exit 1; }

# complete DIR N: DIR has the three class folders with N images each.
complete() {
  local dir=$1 n=$2 cls count
  for cls in rock paper scissors; do
    [ -d "$dir/$cls" ] || return 1
    count=$(find "$dir/$cls" -maxdepth 1 -type f \( -iname '*.png' -o -iname '*.jpg' \) | wc -l)
    [ "$count" -eq "$n" ] || return 1
  done
}

if complete "$dest/rock_paper_scissors/train" 840 && complete "$dest/rock_paper_scissors/test" 124; then
  [ $check_only = 1 ] || say "the dataset is already in $dest/rock_paper_scissors: nothing to do"
  exit 0
fi
if [ $check_only = 1 ]; then
  complete "$dest/rps" 840 && complete "$dest/rps-test-set" 124 && exit 0
  exit 1
fi

mkdir -p "$dest" || fail "cannot create the folder $dest"
[ -w "$dest" ] || fail "the folder $dest is not writable; pass another DEST"

# Progress bars when someone watches (stderr is a terminal), quiet in logs.
if [ -t 2 ]; then CURL_PROGRESS=--progress-bar WGET_PROGRESS=--show-progress; else CURL_PROGRESS=-sS WGET_PROGRESS=; fi

fetch() {  # fetch URL FILE: download to FILE.part, then rename (never leaves a partial FILE)
  local url=$1 out=$2
  rm -f "$out.part"
  if command -v curl >/dev/null 2>&1; then
    curl -fL --retry 2 --connect-timeout 20 $CURL_PROGRESS -o "$out.part" "$url" && mv "$out.part" "$out" && return 0
  elif command -v wget >/dev/null 2>&1; then
    wget -q $WGET_PROGRESS --tries=2 --timeout=20 -O "$out.part" "$url" && mv "$out.part" "$out" && return 0
  else
    fail "neither curl nor wget is installed (apt-get install ca-certificates curl)"
  fi
  rm -f "$out.part"
  return 1
}

have_unzip() { command -v unzip >/dev/null 2>&1; }
zip_ok() {  # zip_ok ZIP: the archive is whole (every member's CRC checks)
  if have_unzip; then
    unzip -tq "$1" >/dev/null 2>&1
  elif command -v python3 >/dev/null 2>&1; then
    python3 -m zipfile -t "$1" >/dev/null 2>&1
  else
    fail "neither unzip nor python3 is installed (apt-get install unzip)"
  fi
}
unpack() {  # unpack ZIP DIR
  if have_unzip; then
    unzip -q -o "$1" -d "$2"
  elif command -v python3 >/dev/null 2>&1; then
    python3 -m zipfile -e "$1" "$2"
  else
    fail "neither unzip nor python3 is installed (apt-get install unzip)"
  fi
}

tmp=
trap '[ -z "$tmp" ] || rm -rf "$tmp"' EXIT

get() {  # get NAME FOLDER COUNT
  local name=$1 folder=$2 count=$3 zip=$dest/$1
  if complete "$dest/$folder" "$count"; then
    say "$dest/$folder is complete: skipping $name"
    return 0
  fi
  if [ ! -s "$zip" ] || ! zip_ok "$zip"; then
    say "downloading $BASE_URL/$name"
    if ! fetch "$BASE_URL/$name" "$zip"; then
      fail "cannot download $BASE_URL/$name (no network?). Fetch it on a machine that has one, copy it to $zip and run this script again."
    fi
    if ! zip_ok "$zip"; then
      rm -f "$zip"
      fail "$BASE_URL/$name did not give a whole zip archive (a proxy's page?); removed it"
    fi
  fi
  say "unpacking $name"
  tmp=$(mktemp -d "$dest/.unpack.XXXXXX")
  if ! unpack "$zip" "$tmp"; then
    rm -f "$zip"
    fail "$zip is damaged (removed): run this script again to download it anew"
  fi
  [ -d "$tmp/$folder" ] || fail "$zip does not hold a folder $folder/"
  complete "$tmp/$folder" "$count" || fail "$zip does not hold $count images in each of $folder/{rock,paper,scissors}"
  rm -rf "${dest:?}/$folder"
  mv "$tmp/$folder" "$dest/$folder"
  rm -rf "$tmp"
  tmp=
  rm -f "$zip"
  say "$dest/$folder: 3 classes x $count images"
}

get rps.zip rps 840
get rps-test-set.zip rps-test-set 124
say "done: load it with typenet::data::load(\"rock_paper_scissors\", {.dir = \"$dest\"})"
