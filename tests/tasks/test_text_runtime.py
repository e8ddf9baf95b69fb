"""Device and precision choices of text models (``textcls._runtime``).

The CPU's bf16 support is simulated through torch's own capability checks, so
each kind of CPU is covered on whatever machine runs the suite.
"""

from __future__ import annotations

import warnings

import pytest

from support import need_torch


@pytest.fixture
def cpu(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """A CPU whose AMX and AVX-512 BF16 support the test sets."""
    need_torch()
    import torch

    caps = {"amx": False, "avx512_bf16": False}
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: caps["amx"])
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: caps["avx512_bf16"])
    return caps


@pytest.mark.parametrize(
    ("amx", "avx512_bf16", "expected"),
    [(False, False, "fp32"), (True, False, "bf16"), (False, True, "bf16"), (True, True, "bf16")],
)
def test_auto_precision_is_bf16_only_where_the_cpu_has_it(
    cpu: dict[str, bool], amx: bool, avx512_bf16: bool, expected: str
) -> None:
    import torch

    from leptonic.tasks.textcls._runtime import native_bf16, pick_precision

    cpu.update(amx=amx, avx512_bf16=avx512_bf16)
    device = torch.device("cpu")
    assert native_bf16(device) is (expected == "bf16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pick_precision("auto", device) == expected
        assert pick_precision("fp32", device) == "fp32"


def test_explicit_bf16_without_hardware_support_is_kept_with_a_warning(
    cpu: dict[str, bool],
) -> None:
    import torch

    from leptonic.tasks.textcls._runtime import pick_precision

    with pytest.warns(RuntimeWarning, match="emulated.*use precision 'auto' or 'fp32'"):
        assert pick_precision("bf16", torch.device("cpu")) == "bf16"
    cpu.update(avx512_bf16=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pick_precision("bf16", torch.device("cpu")) == "bf16"


def test_position_limit_reads_absolute_position_tables_only() -> None:
    from types import SimpleNamespace

    from leptonic.tasks.textcls._runtime import position_limit

    assert position_limit(SimpleNamespace(max_position_embeddings=512, model_type="bert")) == 512
    roberta = SimpleNamespace(max_position_embeddings=514, model_type="roberta", pad_token_id=1)
    assert position_limit(roberta) == 512
    deberta = SimpleNamespace(
        max_position_embeddings=512, model_type="deberta-v2", position_biased_input=False
    )
    assert position_limit(deberta) is None
