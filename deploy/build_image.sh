#!/usr/bin/env bash
# Build the suite's OCI image with podman (see docs/scale-out.md):
#   deploy/build_image.sh            # -> localhost/ai-service-suite:latest
# Environment:
#   IMAGE              tag to build (default localhost/ai-service-suite:latest)
#   BASE_IMAGE         base of both stages (default localhost/suite-base:bookworm, made here from Debian's own
#                      packages with debootstrap when missing; where a registry is reachable you may use
#                      docker.io/library/python:3.11-slim-bookworm, the Containerfile's default)
#   DEBIAN_MIRROR      mirror for debootstrap (default: the first Debian URI in this machine's apt sources)
#   SUITE_BUILD_CACHE  host directory of setup.sh's llama-server builds, mounted into the build so a rebuild
#                      does not recompile (default ~/.cache/ai-service-suite/builds, the one setup.sh fills)
#   CONTAINERS_CONF    podman settings (default deploy/containers.conf: runc, no default ulimits)
#   SUITE_DEPS         the locked dependency set setup.sh installs in the image (default runtime)
# This machine's pip configuration, CA bundle and local wheel folders/indexes are mounted read-only into
# the build steps (-v ...:ro), never copied into the image. Pip settings given only as environment
# variables (PIP_*) do not reach the build: put them in a pip config file.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/deploy/containers.conf}
IMAGE=${IMAGE:-localhost/ai-service-suite:latest}
BASE_IMAGE=${BASE_IMAGE:-localhost/suite-base:bookworm}
BUILD_CACHE=${SUITE_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-service-suite/builds}
step() { printf '\n==> %s\n' "$*"; }

debian_mirror() {
    { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } \
        | awk '$1 == "URIs:" { uri = $2 } $1 == "deb" { uri = ($2 ~ /^\[/ ? $3 : $2) }
               uri ~ /\/debian\/?$/ && !found { found = uri } END { print (found ? found : "http://deb.debian.org/debian") }'
}

# Every pip config file, and every local path its settings name (cert, constraints, find-links, file://
# indexes: the index's parent, since its pages link to ../../files/), as read-only volume flags.
pip_volumes() {
    local pip=(python3 -m pip --disable-pip-version-check)
    {
        "${pip[@]}" config list -v 2>/dev/null | sed -n "s/.*will try loading '\(.*\)'$/\1/p"
        "${pip[@]}" config list 2>/dev/null | sed -n "s/^[^=]*='\(.*\)'$/\1/p" | tr ' ' '\n' \
            | sed -e 's#^file://##' -e 's#/simple/\?$##'
        echo /etc/ssl/certs/ca-certificates.crt
    } | grep '^/' | sort -u | while read -r path; do
        [ -e "$path" ] || continue
        # the build runs as root: a user-level pip config goes to root's home
        target=$path
        if [ "$HOME" != /root ] && [ "${path#"$HOME"/}" != "$path" ]; then target=/root/${path#"$HOME"/}; fi
        printf -- '-v\n%s:%s:ro\n' "$path" "$target"
    done
}

if [ "$BASE_IMAGE" = localhost/suite-base:bookworm ] && ! podman image exists "$BASE_IMAGE"; then
    MIRROR=${DEBIAN_MIRROR:-$(debian_mirror)}
    step "Making $BASE_IMAGE from Debian bookworm ($MIRROR) with debootstrap: python3, python3-venv, ca-certificates"
    ROOTFS=$(mktemp -d)
    trap 'rm -rf "$ROOTFS"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$ROOTFS" "$MIRROR" \
        > "$ROOTFS.log" || { tail -30 "$ROOTFS.log"; exit 1; }
    tar -C "$ROOTFS" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" > /dev/null
    rm -rf "$ROOTFS" "$ROOTFS.log"
    trap - EXIT
fi

mkdir -p "$BUILD_CACHE"
mapfile -t VOLUMES < <(pip_volumes)
step "Building $IMAGE on $BASE_IMAGE (llama-server cache: $BUILD_CACHE)"
podman build \
    --file deploy/Containerfile \
    --ignorefile deploy/containerignore \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    --build-arg "SUITE_DEPS=${SUITE_DEPS:-runtime}" \
    --network host \
    --layers \
    -v "$BUILD_CACHE:/cache/builds" \
    "${VOLUMES[@]}" \
    --tag "$IMAGE" \
    .
step "Built $IMAGE: $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{ printf "%.2f GB", $1 / 1e9 }')"
