#!/usr/bin/env bash
# fresh_machine_check.sh: proves that scripts/setup.sh installs everything the project needs, so a
# missing install step cannot hide behind a well-stocked machine. Builds a bare Debian 12 root
# (debootstrap --variant=minbase plus build-essential, cmake, git, python3, ca-certificates: what
# a fresh machine of ours has; no CUDA toolkit), copies HEAD's tracked files and ../shared into it
# laid out as here (/work/<project> with /work/shared beside it), gives it this host's CA
# certificates and apt/pip settings (the same package mirrors, reached the same way), and runs the
# README's test command, `bash scripts/test.sh`, inside it under chroot. Exits with that command's
# status. Runs as root (debootstrap, chroot and mount need it); a full build and test run.
#
#   FORGE_FRESH_DIR=DIR     work folder (default build-fresh/): root/ is made anew every run;
#                           kept between runs: debs/ (the bootstrap's packages), bootstrap.tar
#                           (the bare root) and apt-archives/ (the root's apt downloads)
#   FORGE_FRESH_MIRROR=URL  Debian mirror (default: the host's first Debian source in /etc/apt)
set -euo pipefail
project="$(cd "$(dirname "$0")/.." && pwd)"
name="$(basename "$project")"
shared="$project/../shared"
work="$(mkdir -p "${FORGE_FRESH_DIR:-$project/build-fresh}" && cd "${FORGE_FRESH_DIR:-$project/build-fresh}" && pwd)"
root="$work/root"
start=$SECONDS

fail() { echo "fresh_machine_check: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot and mount); CI runs it as root"
command -v debootstrap >/dev/null || fail "debootstrap is missing (bash scripts/setup.sh installs it)"
[ -d "$shared" ] || fail "$shared is missing: the check copies ../shared beside the project"

# Every mount point under the root, deepest first.
mounts_under_root() {
  awk -v r="$root" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}
unmount_root() {
  local m
  for m in $(mounts_under_root); do umount "$m" 2>/dev/null || umount -l "$m"; done
}
trap unmount_root EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A fresh root every run. Never delete through a mount left by a killed run (that would be /dev).
unmount_root
[ -z "$(mounts_under_root)" ] || fail "cannot unmount $(mounts_under_root | tr '\n' ' ')"
rm -rf --one-file-system "$root"

# The host's first Debian source: deb822 URIs, or a one-line "deb [options] URI suite" entry.
host_debian_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && awk '$1 == "URIs:" { for (i = 2; i <= NF; i++) print $i }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && sed -E 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" { print $2 }'
  done
  return 0
}
mirror="${FORGE_FRESH_MIRROR:-$(host_debian_mirror | grep -E '/debian/?$' | head -n 1 || true)}"
mirror="${mirror:-http://deb.debian.org/debian}"

# The bare root as debootstrap made it is kept as a tarball (bootstrap.tar) for the next run,
# under the key of what made it; configuring 180 packages again would take minutes.
packages=build-essential,cmake,git,python3,ca-certificates
key="bookworm minbase $mirror $packages"
mkdir -p "$work/debs" "$work/apt-archives/partial" "$root"
if [ -f "$work/bootstrap.tar" ] && [ "$(cat "$work/bootstrap.key" 2>/dev/null)" = "$key" ]; then
  echo "== fresh_machine_check: bare root from $work/bootstrap.tar ($key)"
  tar -x -p -f "$work/bootstrap.tar" -C "$root"
else
  echo "== fresh_machine_check: debootstrap $key into $root"
  debootstrap --variant=minbase --cache-dir="$work/debs" --include="$packages" bookworm "$root" \
    "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    fail "debootstrap failed (log: $work/debootstrap.log)"
  }
  tar -c -f "$work/bootstrap.tar.partial" -C "$root" .
  mv "$work/bootstrap.tar.partial" "$work/bootstrap.tar"
  echo "$key" >"$work/bootstrap.key"
fi
echo "== root ready after $((SECONDS - start)) s"

# The host's ways to the package registries: CA certificates (also where update-ca-certificates
# rebuilds the bundle from), apt sources and their keys, apt's Acquire settings (proxies,
# validity), name resolution, pip's configuration files.
cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
cp -L /etc/resolv.conf /etc/hosts "$root/etc/"
# Copies a host file to the same path in the root.
copy_in() {
  mkdir -p "$(dirname "$root$1")"
  cp -L "$1" "$root$1"
}
shopt -s nullglob
host_sources=(/etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
if [ -s /etc/apt/sources.list ]; then host_sources+=(/etc/apt/sources.list); fi
if [ ${#host_sources[@]} -gt 0 ]; then
  rm -f "$root/etc/apt/sources.list"
  for f in "${host_sources[@]}"; do copy_in "$f"; done
  for key in $(grep -ohE '(Signed-By:|signed-by=) *[^] ]+' "${host_sources[@]}" | sed -E 's/.*[:=] *//' || true); do
    if [ -f "$key" ] && [ ! -e "$root$key" ]; then copy_in "$key"; fi
  done
fi
for f in /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
  if grep -qs 'Acquire' "$f"; then copy_in "$f"; fi
done
for f in /etc/apt/auth.conf.d/* /etc/apt/trusted.gpg /etc/apt/trusted.gpg.d/* /etc/apt/keyrings/* \
  /etc/pip.conf /etc/xdg/pip/pip.conf; do
  if [ -f "$f" ]; then copy_in "$f"; fi
done
shopt -u nullglob
for f in .config/pip/pip.conf .pip/pip.conf; do  # the user's pip settings, for the root's root
  if [ -f "$HOME/$f" ]; then mkdir -p "$(dirname "$root/root/$f")" && cp -L "$HOME/$f" "$root/root/$f"; fi
done
chroot "$root" update-ca-certificates >/dev/null 2>&1 || true

# The project as a clean clone has it (HEAD's tracked files), and ../shared beside it.
mkdir -p "$root/work/$name" "$root/work/shared"
git -C "$project" archive HEAD | tar -x -C "$root/work/$name"
cp -a "$shared/." "$root/work/shared/"

mount -t proc proc "$root/proc"
mount -t sysfs -o ro sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs tmpfs "$root/dev/shm"
mount --bind "$work/apt-archives" "$root/var/cache/apt/archives"

# A clean environment, plus the host's variables that say how to reach the registries.
env_args=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  LANG=C.UTF-8 TERM="${TERM:-dumb}")
while IFS= read -r var; do
  env_args+=("$var=${!var}")
done < <(compgen -e | grep -E '^(PIP_[A-Z_]+|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY|all_proxy|ALL_PROXY|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|GIT_SSL_CAINFO)$')

echo "== bash scripts/test.sh in the root (/work/$name)"
# In its own process group, so that a signal to this script stops the whole run in the root
# before the mounts go (bash would otherwise wait for a foreground child before trapping).
setsid chroot "$root" /usr/bin/env -i "${env_args[@]}" \
  bash -c "cd /work/$name && bash scripts/test.sh" &
run=$!
# shellcheck disable=SC2317  # called by the traps below
stop_run() { kill -TERM -- "-$run" 2>/dev/null; wait "$run"; exit "$1"; }
trap 'stop_run 130' INT
trap 'stop_run 143' TERM
status=0
wait "$run" || status=$?
if [ "$status" = 0 ]; then
  echo "fresh_machine_check: OK, the test command passed on a fresh Debian 12 root ($((SECONDS - start)) s)"
else
  echo "fresh_machine_check: FAILED, the test command exited $status on a fresh Debian 12 root ($((SECONDS - start)) s)" >&2
fi
exit "$status"
