#!/bin/sh
# Runs a command as an unprivileged user (nobody) when run as root: root reads every file whatever
# its permissions, so a check of what happens to unreadable files must drop root to mean anything.
# Skips (exit 0, saying so) where the user cannot reach the command, e.g. a build under /root.
#   as_unprivileged.sh COMMAND ARGS...
if [ "$(id -u)" != 0 ]; then exec "$@"; fi
AS_NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
if ! $AS_NOBODY test -x "$1" 2>/dev/null; then
  echo "as_unprivileged: skipped: user nobody cannot run $1 (or setpriv is missing)"
  exit 0
fi
exec $AS_NOBODY "$@"
