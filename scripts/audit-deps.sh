#!/usr/bin/env bash
# Check every Python package installed in .venv (the exact versions sohoa runs with)
# against known vulnerabilities with pip-audit, from PyPI's JSON API (default) or OSV
# (--osv). pip-audit itself lives in a separate virtualenv, never in the project's.
#
#   bash scripts/audit-deps.sh [--osv]
#
# Exit 0: no known vulnerabilities; 1: vulnerabilities found (listed with the versions
# that fix them); 2: the vulnerability data could not be reached, so nothing was audited.
# pip-audit alone reports "No known vulnerabilities found" when every package was
# skipped for want of data; here a known-vulnerable canary (jinja2 2.10, CVE-2019-10906)
# must be reported first, and a run where every package was skipped counts as no data.
set -euo pipefail
cd "$(dirname "$0")/.."

SOURCE=(-s pypi)
[ "${1:-}" = "--osv" ] && SOURCE=(-s osv)
TOOL="${SOHOA_AUDIT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sohoa/pip-audit}"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ ! -x "$TOOL/bin/pip-audit" ]; then
  python3 -m venv "$TOOL"
  "$TOOL/bin/python" -m pip install -q "pip-audit==2.10.*" >/dev/null 2>&1 || {
    echo "audit-deps: cannot install pip-audit from the package index" >&2
    exit 2
  }
fi
audit() { "$TOOL/bin/pip-audit" "${SOURCE[@]}" --no-deps --disable-pip --progress-spinner off \
            -f json -o "$2" -r "$1" >"$WORK/log" 2>&1 || true; }

echo "jinja2==2.10" >"$WORK/canary.txt"
audit "$WORK/canary.txt" "$WORK/canary.json"
.venv/bin/pip freeze --exclude-editable --disable-pip-version-check >"$WORK/requirements.txt"
audit "$WORK/requirements.txt" "$WORK/report.json"

exec .venv/bin/python - "$WORK" "${SOURCE[1]}" <<'EOF'
import json, sys
from pathlib import Path

work, source = Path(sys.argv[1]), sys.argv[2]
def load(name):
    try:
        return json.loads((work / name).read_text())["dependencies"]
    except (OSError, ValueError, KeyError):
        return None
canary, deps = load("canary.json"), load("report.json")
if not canary or not any(d.get("vulns") for d in canary):
    log = (work / "log").read_text().strip().splitlines()
    why = (canary or [{}])[0].get("skip_reason") or (log[-1] if log else "no answer")
    print(f"audit-deps: vulnerability data unreachable from here ({source}; the known-vulnerable "
          f"canary jinja2 2.10 was not reported: {why[:140]}): nothing was audited")
    sys.exit(2)
if deps is None or all("skip_reason" in d for d in deps):
    print(f"audit-deps: vulnerability data unreachable ({source}): every package was skipped")
    sys.exit(2)
skipped = [d["name"] for d in deps if "skip_reason" in d]
found = [(d, v) for d in deps for v in d.get("vulns", [])]
for d, v in found:
    fix = ", ".join(v.get("fix_versions") or []) or "no fix yet"
    print(f"{d['name']} {d['version']}: {v['id']} (fixed in {fix})")
print(f"audit-deps: {len(deps) - len(skipped)} packages audited ({source}), "
      f"{len(found)} known vulnerabilities, {len(skipped)} skipped"
      + (f": {', '.join(skipped)}" if skipped else ""))
sys.exit(1 if found else 0)
EOF
