"""What the command line prints: tables whose columns line up when labels hold Chinese
(two terminal columns a character), and per-stage progress lines that only a terminal sees."""
from __future__ import annotations

import io
import logging
import unicodedata

from pipeline import cli, terminal

JUNCTIONS = set("│┃┼┬┴├┤┌┐└┘╋")


def display_width(s: str) -> int:
    """Terminal columns, counted independently of the library that laid the table out."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1
               for c in s)


def junctions(line: str) -> list[int]:
    cols, out = 0, []
    for c in line:
        if c in JUNCTIONS:
            out.append(cols)
        cols += display_width(c)
    return out


def assert_aligned(text: str, min_tables: int = 1) -> None:
    """Every box-drawn table in text: each line has its column borders at the same display
    columns as the table's top border, and the same width."""
    tables, current = [], []
    for line in text.splitlines():
        if line[:1] in JUNCTIONS:
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    assert len(tables) >= min_tables, text
    for t in tables:
        top = junctions(t[0])
        assert len(top) >= 2
        for line in t:
            assert junctions(line) == top, f"columns drift:\n{t[0]}\n{line}"
            assert display_width(line) == display_width(t[0])


ROWS = [("after_death", "Claims after death / 死亡后就医", 7, "413.46"),
        ("split_hospitalization", "Split hospitalisation / 分解住院", 3, "2,156.37"),
        ("collusion_ring", "Collusion ring / 团伙就医（结伙）", 12, "98,210.00"),
        ("plain", "plain ASCII label", 0, "-")]


def test_table_columns_line_up_with_chinese_labels():
    text = terminal.table(["id", "name / 名称", "findings / 疑点", ("at risk / 涉及金额", "right")], ROWS)
    assert_aligned(text)
    assert "死亡后就医" in text and "98,210.00" in text
    # hand padding, as before, drifts: the check above would catch it
    hand = "\n".join(f"│ {a:24s}│ {b:40s}│" for a, b, _, _ in ROWS)
    assert len({tuple(junctions(line)) for line in hand.splitlines()}) > 1


def test_a_narrow_terminal_wraps_cells_and_keeps_the_columns():
    text = terminal.table(["id", "name / 名称", "findings / 疑点"], [r[:3] for r in ROWS], width=50)
    assert_aligned(text)
    assert max(display_width(line) for line in text.splitlines()) <= 50


def test_detectors_command_prints_an_aligned_table(capsys):
    assert cli.main(["detectors"]) == 0
    out = capsys.readouterr().out
    assert "死亡后就医" in out and "collusion_ring" in out
    assert_aligned(out)


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_lines_reach_a_terminal_only_and_never_under_quiet(monkeypatch):
    def emit():
        with terminal.stage("rank", institutions=12) as found:
            found["findings"] = 3456
        terminal.step(2, 30, "2026-10-02: extract written", 1.25)

    try:
        for stream, enabled, seen in ((_Tty(), True, True), (io.StringIO(), True, False), (_Tty(), False, False)):
            monkeypatch.setattr("sys.stderr", stream)
            terminal.show_progress(enabled)
            emit()
            text = stream.getvalue()
            if seen:
                assert "rank ..." in text and "rank: institutions 12, findings 3,456 (" in text
                assert "[2/30] 2026-10-02: extract written (1.2s)" in text
            else:
                assert text == ""
    finally:
        terminal.reset_progress()


def test_progress_lines_go_to_the_log_for_airflow(caplog):
    """Without the command line's switch the lines are ordinary INFO records (Airflow's task log)."""
    with caplog.at_level(logging.INFO, logger="claimscreen.progress"):
        terminal.step(1, 2, "detect after_death: 7 findings", 0.5)
    assert "[1/2] detect after_death: 7 findings (0.5s)" in caplog.text


def test_synth_reports_each_night_on_a_terminal_and_nothing_under_quiet(tmp_path, monkeypatch, capsys):
    for quiet in (False, True):
        err = _Tty()
        monkeypatch.setattr("sys.stderr", err)
        argv = (["--quiet"] if quiet else []) + ["synth", "--out", str(tmp_path / f"q{quiet}"), "--days", "2",
                                                 "--scale", "0.05"]
        assert cli.main(argv) == 0
        assert '"dates"' in capsys.readouterr().out                       # the summary still prints
        lines = err.getvalue().splitlines()
        if quiet:
            assert lines == []
        else:
            assert lines[0].startswith("synth: world at scale 0.05")
            assert [line.split(" (")[0] for line in lines[1:]] == [
                "[1/2] synth 2026-10-01: extract written", "[2/2] synth 2026-10-02: extract written"]
