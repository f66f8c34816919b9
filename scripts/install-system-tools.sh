#!/usr/bin/env bash
# Installs the system tools the image tests use (Debian packages): a registry, a daemonless builder,
# and the tools that pull, unpack and run an image. Skips the install when all are present.
set -euo pipefail
need=()
for tool in buildah docker-registry runc skopeo umoci htpasswd; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "system tools present: buildah docker-registry runc skopeo umoci htpasswd"
  exit 0
fi
echo "installing system tools (missing: ${need[*]})"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends buildah docker-registry runc skopeo umoci apache2-utils >/dev/null
