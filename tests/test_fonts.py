"""Chinese renders in every picture: a ring picture is drawn with no missing-glyph warning
(the set-up installs the font; CI must have it), and without any Chinese font the picture
is still drawn, with English labels and no boxes."""
from __future__ import annotations

import importlib.util
import os
import warnings

import pytest

from pipeline import fonts, registry

def _ring() -> dict:
    """A ring as the detector hands it to draw_ring: nine recruited patients, two doctors of
    one clinic, a shared phone (an intermediary)."""
    pats = [f"patient:P{i:06d}" for i in range(1, 10)]
    docs = ["doctor:D000000000004", "doctor:D000000000007"]
    inst = "institution:H00000000001"
    return {"ring_id": "RING0001", "score": 3.25, "fund": 48_210.0, "patients": pats, "doctors": docs,
            "members": [("patient", p) for p in pats] + [("doctor", d) for d in docs]
                       + [("institution", inst), ("intermediary", "intermediary:phone-77")],
            "edges": {"covisit": [(a, b, 4.0 + (i + j) % 5) for i, a in enumerate(pats)
                                  for j, b in enumerate(pats) if i < j and (i + j) % 3],
                      "patient_doctor": [(p, docs[i % 2], 3.0 + i % 4) for i, p in enumerate(pats)],
                      "doctor_institution": [(d, inst) for d in docs],
                      "intermediary": [("intermediary:phone-77", p) for p in pats[:4]]}}


RING = _ring()


def _ring_module():
    det = registry.get("collusion_ring")
    spec = importlib.util.spec_from_file_location("collusion_ring_pictures", det.path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _draw(tmp_path, name="ring.png"):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _ring_module().draw_ring(RING, tmp_path / name)
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    return out, missing


def test_the_setup_installs_a_chinese_font():
    if fonts.cjk_font() is None:
        if os.environ.get("CI"):
            pytest.fail("no Chinese font: CI set-up must run scripts/setup_fonts.sh (via scripts/setup.sh)")
        pytest.skip("no Chinese font on this machine (run scripts/setup_fonts.sh); required in CI")
    path, family = fonts.cjk_font()
    assert fonts.bilingual("Ring", "团伙") == "Ring / 团伙"
    assert fonts.drawable("Ring / 团伙") == "Ring / 团伙"


def test_ring_picture_has_every_chinese_glyph(tmp_path):
    if fonts.cjk_font() is None and not os.environ.get("CI"):
        pytest.skip("no Chinese font on this machine")
    out, missing = _draw(tmp_path)
    assert missing == [], missing[:3]
    assert out.stat().st_size > 5000


def test_without_a_chinese_font_pictures_fall_back_to_english(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(fonts, "_candidates", lambda: [])
    fonts.cjk_font.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="pipeline.fonts"):
            out, missing = _draw(tmp_path, "fallback.png")
        assert missing == [] and out.stat().st_size > 5000
        assert "fonts-wqy-microhei" in caplog.text           # the log says what to install
        assert fonts.bilingual("Ring", "团伙") == "Ring"
        assert fonts.drawable("Rings / 团伙") == "Rings"
    finally:
        fonts.cjk_font.cache_clear()
