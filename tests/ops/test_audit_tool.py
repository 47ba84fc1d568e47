"""tools/audit_dependencies.py: real findings fail, an unreachable service is a skip."""

from __future__ import annotations

import json
import subprocess

import pytest
from tools import audit_dependencies as audit

VULNERABLE = {
    "dependencies": [
        {
            "name": "flask",
            "version": "0.1",
            "vulns": [{"id": "PYSEC-1", "fix_versions": ["3.1.1"], "aliases": ["CVE-1"]}],
        },
        {"name": "click", "version": "8.5.1", "vulns": []},
        {"name": "private", "version": "1.0", "skip_reason": "Dependency not found on PyPI"},
    ]
}


def _run_returning(monkeypatch, stdout: str = "", stderr: str = "", code: int = 0) -> None:
    def fake_run(*args, **kwargs):
        return subprocess.CompletedProcess(args, code, stdout=stdout, stderr=stderr)

    monkeypatch.setattr(audit.subprocess, "run", fake_run)


def test_findings_are_listed_and_fail(monkeypatch, capsys):
    _run_returning(monkeypatch, json.dumps(VULNERABLE), code=1)
    assert audit.main() == 1
    out = capsys.readouterr().out
    assert "flask 0.1: PYSEC-1 (CVE-1); fixed in 3.1.1" in out
    assert "in 2 audited packages" in out


def test_nothing_audited_is_a_skip(monkeypatch, capsys):
    report = {"dependencies": [VULNERABLE["dependencies"][2]]}
    _run_returning(monkeypatch, json.dumps(report))
    assert audit.main() == 0
    assert capsys.readouterr().out.startswith("pip-audit: SKIPPED:")


def test_an_unreachable_service_is_a_skip(monkeypatch, capsys):
    _run_returning(monkeypatch, stderr="requests.exceptions.ConnectionError: ...", code=1)
    assert audit.main() == 0
    assert "SKIPPED" in capsys.readouterr().out


@pytest.mark.parametrize("stderr", ["Traceback: KeyError", ""])
def test_pip_audit_failing_otherwise_fails(monkeypatch, capsys, stderr):
    _run_returning(monkeypatch, stderr=stderr, code=2)
    assert audit.main() == 2


def test_clean_audit(monkeypatch, capsys):
    report = {"dependencies": VULNERABLE["dependencies"][1:]}
    _run_returning(monkeypatch, json.dumps(report))
    assert audit.main() == 0
    assert "no known vulnerabilities in 1 audited packages (1 not found" in capsys.readouterr().out
