"""`make security`'s dependency audit: pip-audit over the installed environment.

pip-audit asks a vulnerability service about every installed distribution. Where
that service cannot be reached (no network, or a registry mirror that serves
packages but not the service's answers, which pip-audit reports as "not found on
PyPI" for every package), nothing was audited: that is said in one clear SKIPPED
line and is not a failure. A known vulnerability in anything that was audited is.

Exit codes: 0 clean or skipped, 1 vulnerabilities found, 2 pip-audit itself failed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

NETWORK_ERRORS = (
    "ConnectionError",
    "NameResolutionError",
    "Max retries exceeded",
    "Timeout",
    "Temporary failure in name resolution",
)
TIMEOUT_SECONDS = 600


def _pip_audit() -> str:
    found = Path(sys.executable).with_name("pip-audit")
    return str(found) if found.exists() else (shutil.which("pip-audit") or "pip-audit")


def summarize(report: dict[str, Any]) -> tuple[list[str], int, int]:
    """Lines describing each vulnerability; how many packages were audited and skipped."""
    findings: list[str] = []
    audited = skipped = 0
    for dependency in report.get("dependencies", []):
        if "skip_reason" in dependency:
            skipped += 1
            continue
        audited += 1
        for vuln in dependency.get("vulns", []):
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            aliases = ", ".join(vuln.get("aliases") or [])
            findings.append(
                f"{dependency['name']} {dependency['version']}: {vuln['id']}"
                + (f" ({aliases})" if aliases else "")
                + f"; fixed in {fixed}"
            )
    return findings, audited, skipped


def main() -> int:
    command = [_pip_audit(), "--skip-editable", "--progress-spinner", "off", "--format", "json"]
    try:
        result = subprocess.run(  # noqa: S603 - a fixed command line
            command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        print(
            f"pip-audit: SKIPPED: no answer from the vulnerability service in {TIMEOUT_SECONDS} s"
        )
        return 0
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        if any(marker in result.stderr for marker in NETWORK_ERRORS):
            print("pip-audit: SKIPPED: the vulnerability service is unreachable from here")
            return 0
        print(result.stdout + result.stderr, file=sys.stderr)
        print(f"pip-audit: FAILED to run (exit {result.returncode})")
        return 2
    findings, audited, skipped = summarize(report)
    if findings:
        print(f"pip-audit: {len(findings)} known vulnerabilities in {audited} audited packages:")
        for line in findings:
            print(f"  {line}")
        return 1
    if audited == 0:
        print(
            f"pip-audit: SKIPPED: the vulnerability service answered for none of the "
            f"{skipped} installed packages (unreachable, or a mirror without it)"
        )
        return 0
    note = f" ({skipped} not found on the service)" if skipped else ""
    print(f"pip-audit: no known vulnerabilities in {audited} audited packages{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
