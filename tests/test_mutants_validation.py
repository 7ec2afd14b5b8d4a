"""constructions/validation.py at its edges (mutation testing, issue 13), beyond what
tests/test_mutants_constructions.py pins: the unit thresholds of `format_bytes` at and just below
each, every fallback of `physical_memory`, an empty memory variable, nested limits, and the
message of each argument check in full."""

from __future__ import annotations

import pytest
import torch

from constructions import validation as V


@pytest.mark.parametrize("n, text", [
    (999.9, "999 bytes"), (1e3, "1 kB"), (999_499, "999 kB"), (999_999, "1e+03 kB"),
    (1e6, "1 MB"), (1e9 - 1, "1e+03 MB"), (1e9, "1 GB"), (1e12 - 1e4, "1e+03 GB"),
    (1e12, "1 TB"), (999_999e12, "1e+06 TB"), (1e18, "1.00e+06 TB"), (0, "0 bytes")])
def test_format_bytes_at_each_threshold(n, text):
    assert V.format_bytes(n) == text


@pytest.mark.parametrize("error", [AttributeError, ValueError, OSError])
def test_physical_memory_falls_back_on_each_error(monkeypatch, error):
    def fail(name):
        raise error(name)
    monkeypatch.setattr(V.os, "sysconf", fail)
    assert V.physical_memory() == 8 * 10**9


def test_memory_limit_empty_variable_and_nesting(monkeypatch):
    monkeypatch.setattr(V, "physical_memory", lambda: 10**10)
    monkeypatch.setenv(V.MEMORY_ENV, "")
    assert V.memory_limit() == 8 * 10**9  # an empty variable is unset
    monkeypatch.setenv(V.MEMORY_ENV, "1e-9")
    assert V.memory_limit() == 1  # one byte: > 0 GB is accepted however small
    with V.memory_limit_set(10):
        with V.memory_limit_set(5):
            assert V.memory_limit() == 5
        assert V.memory_limit() == 10 and V._limit_override == [10]
        assert V.check_memory("x", 10) == 10
    assert V._limit_override == [] and V.memory_limit() == 1
    with V.memory_limit_set(1):
        assert V.check_memory("x", 1) == 1 and V.check_memory("x", 0) == 0


def test_check_int_messages_in_full():
    with pytest.raises(ValueError, match=r"^k must be >= 0 and <= 3, got -1$"):
        V.check_int("k", -1, minimum=0, maximum=3)
    with pytest.raises(ValueError, match=r"^k must be <= 3, got 4$"):
        V.check_int("k", 4, minimum=0, maximum=3)
    assert V._upper(None) == "" and V._upper(7) == " and <= 7"
    with pytest.raises(TypeError, match=r"^k must be an integer, got bool True$"):
        V.check_int("k", True)


def test_check_positive_real_returns_floats_and_refuses_infinity():
    assert V.check_positive_real("s", 1e308) == 1e308
    with pytest.raises(ValueError, match=r"^s must be a finite number > 0, got inf$"):
        V.check_positive_real("s", float("inf"))
    with pytest.raises(ValueError, match=r"^s must be a finite number > 0, got -0.0$"):
        V.check_positive_real("s", -0.0)


def test_check_tokens_each_refusal_in_full():
    ok = dict(d_vocab=4, n_ctx=3)
    with pytest.raises(TypeError, match=r"^x must have an integer dtype \(torch.long\), got "
                                        r"torch.float64$"):
        V.check_tokens(torch.zeros(1, 1, dtype=torch.float64), name="x", **ok)
    with pytest.raises(ValueError, match=r"^x must have shape \[batch, pos\], got shape "
                                         r"\(1, 1, 1\)$"):
        V.check_tokens(torch.zeros(1, 1, 1, dtype=torch.long), name="x", **ok)
    with pytest.raises(ValueError, match=r"^x must lie in \[0, 3\] \(d_vocab=4\), got values in "
                                         r"\[0, 4\]$"):
        V.check_tokens(torch.tensor([[0, 4]]), name="x", **ok)
    out = V.check_tokens(torch.tensor([[3, 0, 1]], dtype=torch.uint8), **ok)
    assert out.dtype == torch.long and out.tolist() == [[3, 0, 1]]
    with pytest.raises(ValueError, match=r"got 4$"):
        V.check_tokens(torch.zeros(1, 4, dtype=torch.long), **ok)
