#!/usr/bin/env bash
# The watcher role's input checks, as a table of hostile values (cases.json): for each, the whole
# role runs with the values as extra vars over a system install under a temporary watcher_root,
# and must fail before it makes anything, with a message that names the setting, what it must
# be and what it was given (and never echoes a password or injected text). The argument specs
# (meta/argument_specs.yml) catch wrong types and choices; tasks/assert.yml the rest.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/empty"
cd "$HERE"
count="$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' cases.json)"
for i in $(seq 0 $((count - 1))); do
    python3 - "$i" "$WORK/empty" "$WORK/case.json" <<'PY'
import json, sys
case = json.load(open("cases.json"))[int(sys.argv[1])]
extra = {"watcher_root": sys.argv[2] + "/root", "watcher_user": "root", "watcher_service_manager": "cron"}
extra.update(case["vars"])
extra.update(work=sys.argv[2], case_says=case["says"], case_never=case.get("never", []),
             case_vars_shown=json.dumps({k: "********" if "password" in k else v for k, v in case["vars"].items()}))
json.dump(extra, open(sys.argv[3], "w"))
PY
    # a relative watcher_root resolves against the working directory: run where it must stay empty
    (cd "$WORK/empty" && ansible-playbook -i "$HERE/inventory.yml" "$HERE/one_case.yml" -e "@$WORK/case.json" "$@")
done
echo "all $count hostile inputs refused"
