"""``robocell line run``: a line file's cells under onnxruntime alone, signed telemetry,
drift alarms, self-calibration, resume after kill -9, and clear errors for bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from robocell.cli import main
from robocell.errors import RobocellError
from robocell.line.telemetry import open_telemetry, verify_telemetry

ROOT = Path(__file__).resolve().parents[1]
VISION = "robocell/VisionSort-v1"
pytestmark = pytest.mark.xdist_group("line")


def _line(tmp_path: Path, parts: int = 40, **cell: Any) -> Path:
    entry = {"id": "vision-1", "env_id": VISION, "bundle": str(ROOT / "models" / "vision"),
             "detectors": {"warmup_parts": 20}, **cell}  # fmt: skip
    path = tmp_path / "line.yaml"
    path.write_text(yaml.safe_dump({"line": "test-line", "parts": parts, "cells": [entry]}))
    return path


def _knock(at_part: int) -> list[dict[str, Any]]:
    return [
        {"at_part": at_part, "parameter": "camera_tilt_deg", "value": 2.0},
        {"at_part": at_part, "parameter": "camera_shift_mm", "value": [8.0, 0.0]},
    ]


def _run(*args: str) -> tuple[int, dict[str, Any] | None]:
    result = subprocess.run(
        [sys.executable, "-m", "robocell", "line", "run", *args, "--json", "--no-progress"],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    return result.returncode, (json.loads(lines[-1]) if result.returncode == 0 else None)


def test_a_knocked_camera_is_alarmed_calibrated_and_sorted_again(tmp_path: Path) -> None:
    line = _line(tmp_path, parts=60, scenario=_knock(30))
    code, summary = _run(str(line), "-o", str(tmp_path / "out"))
    assert code == 0 and summary is not None
    events = summary["events"]
    alarms = [e for e in events if e["type"] == "drift_alarm"]
    calibrations = [e for e in events if e["type"] == "calibration"]
    assert alarms and 30 <= alarms[0]["part"] < 40
    assert calibrations and calibrations[0]["part"] >= alarms[0]["part"]
    assert calibrations[0]["data"]["error_after"] and calibrations[0]["data"]["duration_s"] > 0
    after = next(w for w in summary["windows"] if w["window"] == "after_last_calibration")
    assert after["success_rate"] >= 0.9
    with open_telemetry(tmp_path / "out" / "telemetry.sqlite", create=False) as store:
        (chain,) = verify_telemetry(store)
        assert chain.ok and chain.rows == 60
        rows = store.rows()
        assert [r["part"] for r in rows] == list(range(60))
        assert rows[-1]["calibration_version"] >= 1 and rows[0]["calibration_version"] == 0
        assert rows[40]["conditions"]["camera_tilt_deg"] == 2.0
        assert {e["type"] for e in store.events()} >= {"deployment", "drift_alarm", "calibration"}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(tmp_path / "out" / "tb" / "vision-1"))
    accumulator.Reload()
    success = accumulator.Scalars("line/success")
    assert [point.step for point in success] == list(range(60))
    assert {"line/energy_j", "line/cycle_time_s", "line/co2e_g"} <= set(
        accumulator.Tags()["scalars"]
    )


def test_two_cells_run_in_parallel_processes_each_in_its_own_chain(tmp_path: Path) -> None:
    bundle = str(ROOT / "models" / "vision")
    cells = [{"id": f"vision-{i}", "env_id": VISION, "bundle": bundle} for i in (1, 2)]
    line = tmp_path / "line.yaml"
    line.write_text(yaml.safe_dump({"line": "two", "parts": 4, "cells": cells}))
    code, summary = _run(str(line), "-o", str(tmp_path / "out"))
    assert code == 0 and summary is not None and set(summary["cells"]) == {"vision-1", "vision-2"}
    with open_telemetry(tmp_path / "out" / "telemetry.sqlite", create=False) as store:
        chains = verify_telemetry(store)
        assert sorted((c.cell, c.rows, c.ok) for c in chains) == [
            ("vision-1", 4, True),
            ("vision-2", 4, True),
        ]
        first = {r["cell"]: r["conditions"] for r in store.rows() if r["part"] == 0}
        assert first["vision-1"] == first["vision-2"]  # same plant, own episode seeds


def test_line_runtime_never_imports_torch(tmp_path: Path) -> None:
    line = _line(tmp_path, parts=3)
    code = (
        "import sys\n"
        "from robocell.cli import main\n"
        f"assert main(['line', 'run', {str(line)!r}, '-o', {str(tmp_path / 'o')!r},"
        " '--no-progress']) == 0\n"
        "heavy = ('torch', 'stable_baselines3')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_kill_9_loses_at_most_the_part_in_flight_and_resume_continues_the_chain(
    tmp_path: Path,
) -> None:
    line = _line(tmp_path, parts=80)
    out = tmp_path / "out"
    store_path = out / "telemetry.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-m", "robocell", "line", "run", str(line), "-o", str(out),
         "--no-progress"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    recorded = 0
    while recorded < 15 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
        try:  # the file exists a moment before its tables do
            with open_telemetry(store_path, create=False) as store:
                recorded = len(store.rows())
        except RobocellError:
            continue
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with open_telemetry(store_path, create=False) as store:
        killed_at = len(store.rows())
        assert all(chain.ok for chain in verify_telemetry(store))
    assert 15 <= killed_at < 80
    code, _ = _run(str(line), "-o", str(out))
    assert code != 0  # the chain exists: resuming must be asked for
    code, summary = _run(str(line), "-o", str(out), "--resume")
    assert code == 0 and summary is not None
    with open_telemetry(store_path, create=False) as store:
        (chain,) = verify_telemetry(store)
        assert chain.ok and [r["part"] for r in store.rows()] == list(range(80))
        assert [e["part"] for e in store.events() if e["type"] == "resume"] == [killed_at]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"env_id": "robocell/Nope-v0"}, "unknown cell 'robocell/Nope-v0'"),
        ({"env_id": "robocell/WeldSeam-v1"}, "is for robocell/VisionSort-v1, not robocell/Weld"),
        ({"bundle": "/nonexistent/bundle"}, "/nonexistent/bundle"),
        ({"scenario": [{"at_part": 3, "parameter": "tcp_offset_mm", "value": 1.0}]},
         "'tcp_offset_mm' is not a plant parameter of robocell/VisionSort-v1"),
        ({"scenario": [{"at_part": 3, "parameter": "camera_tilt_deg", "value": 90.0}]},
         "camera_tilt_deg must be in [-10.0, 10.0]"),
        ({"scenario": [{"at_part": 3, "parameter": "camera_tilt_deg"}]},
         "give exactly one of value and ramp"),
        ({"colour": "red"}, "cells[0].colour: unknown key"),
    ],
)  # fmt: skip
def test_bad_line_files_are_refused_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: dict[str, Any], message: str
) -> None:
    line = _line(tmp_path, **edit)
    out = tmp_path / "out"
    assert main(["line", "run", str(line), "-o", str(out), "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_an_unreachable_telemetry_url_is_a_clear_error_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _line(tmp_path)
    out = tmp_path / "out"
    url = "postgresql://robocell@127.0.0.1:1/nowhere"
    assert main(["line", "run", str(line), "-o", str(out), "--telemetry", url]) == 7
    assert "cannot connect" in capsys.readouterr().err and not out.exists()


def test_line_report_renders_from_the_telemetry(tmp_path: Path) -> None:
    from browsertools import chromium, pixels, screenshot

    line = _line(tmp_path, parts=45, scenario=_knock(25))
    out = tmp_path / "out"
    assert main(["line", "run", str(line), "-o", str(out), "--no-progress"]) == 0
    page = tmp_path / "line.html"
    assert main(["line", "report", str(out / "telemetry.sqlite"), "-o", str(page)]) == 0
    html = page.read_text()
    assert "drift_alarm" in html and "calibration" in html and "chain holds" not in html
    assert "default-src 'none'" in html and "<script" not in html
    if chromium() is None:
        pytest.skip("Chromium is not installed")
    shot = tmp_path / "shot.png"
    assert screenshot(page, shot, tmp_path) == []  # no console errors: nothing blocked
    image = pixels(shot)
    assert (image < 128).any(axis=-1).mean() > 0.01  # text and the KPI curves are drawn


def test_robocell_calibrate_on_demand_writes_a_version_and_a_signed_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _line(tmp_path, parts=5, scenario=_knock(0))
    out = tmp_path / "out"
    assert main(["calibrate", str(line), "--cell", "vision-1", "-o", str(out)]) == 0
    assert "calibration version 1" in capsys.readouterr().out
    calibration = json.loads((out / "calibration" / "vision-1.json").read_text())
    assert [v["version"] for v in calibration["versions"]] == [1]
    assert calibration["versions"][0]["error_after"]["rotation_deg"] <= 0.2
    assert main(["calibrate", str(line), "--cell", "nope", "-o", str(out)]) == 2
    assert "no cell 'nope'" in capsys.readouterr().err
    # The line then runs under the calibrated belief from its first part.
    assert main(["line", "run", str(line), "-o", str(out), "--resume", "--no-progress"]) == 0
    with open_telemetry(out / "telemetry.sqlite", create=False) as store:
        (chain,) = verify_telemetry(store)
        assert chain.ok
        assert all(row["calibration_version"] == 1 and row["success"] for row in store.rows())
        assert [e["data"]["trigger"] for e in store.events() if e["type"] == "calibration"] == [
            "on demand"
        ]
