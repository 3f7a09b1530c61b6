"""The public surface of polytask.relate: documented, exampled, torch-free to import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import polytask.relate as relate

CONSTANTS = {"AUTO_EXACT_MAX_TASKS"}


@pytest.mark.parametrize("name", sorted(set(relate.__all__) - CONSTANTS))
def test_every_public_name_has_a_docstring_with_a_runnable_example(name: str) -> None:
    doc = getattr(relate, name).__doc__ or ""
    assert "Examples\n" in doc and ">>>" in doc, name
    if callable(getattr(relate, name)) and not isinstance(getattr(relate, name), type):
        assert "Returns\n" in doc, name


def test_importing_the_package_does_not_import_torch() -> None:
    code = "import sys, polytask.relate; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
