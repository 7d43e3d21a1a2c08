#!/bin/sh
# mmdebstrap customize hook: slim the tree and turn it into a read-only ext4 root image.
# Runs inside mmdebstrap's namespace, so files are still owned by root here even when the
# build itself is unprivileged. $1: the chroot, $2: the image to write, then globs to remove.
set -eu
root=$1 image=$2
shift 2
for pattern in "$@"; do
    # shellcheck disable=SC2086  # the patterns are globs on purpose
    rm -rf "$root"$pattern
done
stage=$(mktemp -d "${image}.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
# --one-file-system leaves out the /proc, /sys and /dev mounted into the chroot.
tar -C "$root" --one-file-system -cf - . | tar -C "$stage" -xpf -
megabytes=$(( $(du -sm "$stage" | cut -f1) * 5 / 4 + 64 ))
mkfs.ext4 -q -F -L nvmeh-root -d "$stage" "$image" "${megabytes}M"
