#!/usr/bin/env bash
# Download the rock-paper-scissors dataset (the public zips of its author) for typenet.
#
#   scripts/download_data.sh [DEST]
#
# DEST defaults to $TYPENET_DATA/data when TYPENET_DATA is set, else ./data. The script
# leaves DEST/rps/{rock,paper,scissors}/ (train, 840 PNG per class) and
# DEST/rps-test-set/{rock,paper,scissors}/ (test, 124 PNG per class), the layout that
# typenet::data::load("rock_paper_scissors") reads (with LoadOptions::dir = DEST, or by
# default from $TYPENET_DATA/data). It is idempotent: a split already complete (or the
# shared copy DEST/rock_paper_scissors/{train,test}) is not downloaded again, and a
# download interrupted half-way is resumed from scratch, never used.
#
# Needs curl or wget, and unzip (or python3). Without a network it stops with a message
# saying which file to fetch by hand and where to put it.
set -euo pipefail

BASE_URL=${TYPENET_RPS_URL:-https://storage.googleapis.com/download.tensorflow.org/data}
if [ $# -gt 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
dest=${1:-}
if [ -z "$dest" ]; then
  if [ -n "${TYPENET_DATA:-}" ]; then dest=$TYPENET_DATA/data; else dest=./data; fi
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
  say "the dataset is already in $dest/rock_paper_scissors: nothing to do"
  exit 0
fi

mkdir -p "$dest" 2>/dev/null || fail "cannot create the folder $dest"
[ -w "$dest" ] || fail "the folder $dest is not writable; pass another DEST"

fetch() {  # fetch URL FILE: download to FILE.part, then rename (never leaves a partial FILE)
  local url=$1 out=$2
  rm -f "$out.part"
  if command -v curl >/dev/null 2>&1; then
    curl -fL --retry 2 --connect-timeout 20 -sS -o "$out.part" "$url" && mv "$out.part" "$out" && return 0
  elif command -v wget >/dev/null 2>&1; then
    wget -q --tries=2 --timeout=20 -O "$out.part" "$url" && mv "$out.part" "$out" && return 0
  else
    fail "neither curl nor wget is installed (apt-get install curl)"
  fi
  rm -f "$out.part"
  return 1
}

unpack() {  # unpack ZIP DIR
  if command -v unzip >/dev/null 2>&1; then
    unzip -q -o "$1" -d "$2"
  elif command -v python3 >/dev/null 2>&1; then
    python3 -m zipfile -e "$1" "$2"
  else
    fail "neither unzip nor python3 is installed (apt-get install unzip)"
  fi
}

get() {  # get NAME FOLDER COUNT
  local name=$1 folder=$2 count=$3 zip=$dest/$1
  if complete "$dest/$folder" "$count"; then
    say "$dest/$folder is complete: skipping $name"
    return 0
  fi
  if [ ! -s "$zip" ] || ! unzip -tq "$zip" >/dev/null 2>&1; then
    say "downloading $BASE_URL/$name"
    if ! fetch "$BASE_URL/$name" "$zip"; then
      fail "cannot download $BASE_URL/$name (no network?). Fetch it on a machine that has one, copy it to $zip and run this script again."
    fi
  fi
  say "unpacking $name"
  local tmp
  tmp=$(mktemp -d "$dest/.unpack.XXXXXX")
  if ! unpack "$zip" "$tmp"; then
    rm -rf "$tmp"
    rm -f "$zip"
    fail "$zip is damaged (removed): run this script again to download it anew"
  fi
  [ -d "$tmp/$folder" ] || { rm -rf "$tmp"; fail "$zip does not hold a folder $folder/"; }
  rm -rf "${dest:?}/$folder"
  mv "$tmp/$folder" "$dest/$folder"
  rm -rf "$tmp"
  complete "$dest/$folder" "$count" || fail "$dest/$folder does not hold $count images per class after unpacking"
  rm -f "$zip"
  say "$dest/$folder: 3 classes x $count images"
}

get rps.zip rps 840
get rps-test-set.zip rps-test-set 124
say "done: load it with typenet::data::load(\"rock_paper_scissors\", {.dir = \"$dest\"})"
