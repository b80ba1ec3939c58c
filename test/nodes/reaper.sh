#!/usr/bin/env bash
# Started (in a session of its own) by the `nodes` project's global setup with Jest's pid: when
# that process is gone without its teardown having stopped this reaper (Jest was SIGKILLed),
# removes every node, container, namespace, route and rule (node.sh clean). Polls once a second.
set -uo pipefail
watched="${1:?pid to watch}"
trap 'exit 0' TERM
while kill -0 "$watched" 2>/dev/null; do sleep 1 & wait $!; done
exec bash "$(dirname "$0")/node.sh" clean
