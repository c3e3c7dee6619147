"""The Chinese font every picture is drawn with, and what happens without one.

Supervisors read the Chinese half of every label. Matplotlib's own font (DejaVu Sans) has
no Chinese glyphs: without help it draws boxes and warns "Glyph … missing from font(s)".
``scripts/setup.sh`` installs Debian's ``fonts-wqy-microhei`` (WenQuanYi Micro Hei, 5 MB,
Apache-2.0/GPLv3); Noto Sans CJK, Source Han Sans or WenQuanYi Zen Hei serve as well, and
``$CLAIMSCREEN_CJK_FONT`` can name any font file that has the glyphs.

Fallback, when no such font is on the machine: pictures are still drawn, with the English
half of each label only (never boxes), and one warning in the log names the package to
install. HTML reports and their PDF print name the same fonts in CSS (``CSS_FONT_FAMILY``),
so Chromium prints with the font the set-up installed.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

#: Where Debian's CJK font packages put their files, best first (setup.sh installs the first).
KNOWN_FILES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/source-han-sans/SourceHanSansSC-Regular.otf",
)
#: File-name fragments of CJK fonts elsewhere (other distributions, macOS, Windows).
NAME_KEYS = ("wqy", "notosanscjk", "notoserifcjk", "sourcehan", "simhei", "msyh", "pingfang",
             "droidsansfallback")
#: Characters every label needs: if a font lacks one of these it is not the font we want.
PROBE = "医保基金团伙参保人机构结算疑点"
#: The same fonts for HTML (reports, overview, PDF print through Chromium).
CSS_FONT_FAMILY = "'WenQuanYi Micro Hei','Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei',sans-serif"
INSTALL_HINT = ("no Chinese font found: pictures carry English labels only. Install one with "
                "scripts/setup.sh (Debian package fonts-wqy-microhei) or point $CLAIMSCREEN_CJK_FONT "
                "at a font file with Chinese glyphs")

_CJK = re.compile(r"[\u2e80-\u9fff\u3000-\u303f\uf900-\ufaff\uff00-\uffef]")


def _has_glyphs(path: str) -> bool:
    from matplotlib.ft2font import FT2Font
    try:
        font = FT2Font(path)
    except (OSError, RuntimeError, ValueError):
        return False
    return all(font.get_char_index(ord(c)) for c in PROBE)


def _candidates() -> list[str]:
    env = os.environ.get("CLAIMSCREEN_CJK_FONT")
    found = [env] if env else []
    found += [p for p in KNOWN_FILES if Path(p).is_file()]
    from matplotlib import font_manager
    found += [p for p in sorted(font_manager.findSystemFonts())
              if any(k in Path(p).name.lower().replace("-", "").replace("_", "") for k in NAME_KEYS)]
    return found


@functools.cache
def cjk_font() -> tuple[str, str] | None:
    """(file, family name) of a font with the Chinese glyphs, registered with matplotlib;
    None when the machine has none (looked up once per process)."""
    from matplotlib import font_manager
    for path in dict.fromkeys(_candidates()):
        if Path(path).is_file() and _has_glyphs(path):
            font_manager.fontManager.addfont(path)
            return path, font_manager.FontProperties(fname=path).get_name()
    log.warning(INSTALL_HINT)
    return None


def has_cjk() -> bool:
    return cjk_font() is not None


def bilingual(en: str, zh: str, sep: str = " / ") -> str:
    """'English / 中文' where the Chinese can be drawn, else the English alone."""
    return f"{en}{sep}{zh}" if zh and has_cjk() else en


def drawable(text: str) -> str:
    """text with its Chinese characters removed when no Chinese font exists (so a label
    built elsewhere never turns into boxes); unchanged otherwise."""
    if has_cjk():
        return text
    return re.sub(r"\s*/\s*$", "", _CJK.sub("", text)).strip()


@contextlib.contextmanager
def matplotlib_fonts():
    """A matplotlib rc context drawing with the Chinese font first (DejaVu Sans for the
    rest); without one, plain DejaVu Sans and only English labels (see ``bilingual``)."""
    import matplotlib
    found = cjk_font()
    families = [found[1], "DejaVu Sans"] if found else ["DejaVu Sans"]
    with matplotlib.rc_context({"font.family": families, "axes.unicode_minus": False}):
        yield found
