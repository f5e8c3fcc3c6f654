"""report.html: signed, self-contained, rebuilt by ``robocell report``, seen in a browser."""

from __future__ import annotations

import base64
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browsertools import MISSING, chromium, pixels, screenshot, share_of_colour
from certtools import (
    certify_quietly,
    conditioned_weld_spec,
    read_statement,
    resign,
    write_scripted_weld_bundle,
)

from robocell.cli import main
from robocell.eval.keys import generate_keypair
from robocell.eval.report.html import render_html
from robocell.eval.report.stills import pick_episodes
from robocell.eval.verify import verify_certificate
from robocell.util import sha256_bytes, sha256_file

EPISODES = 8
STILL_EPISODES = 2
MASTER_SEED = "7e57" * 16
PASSED_BADGE_RGB = (0x2E, 0x7D, 0x32)  # page.CSS: .PASSED .badge
FULL_SUCCESS_RGB = (102, 189, 99)  # page.SUCCESS_STOPS at a success rate of 1
needs_chromium = pytest.mark.skipif(chromium() is None, reason=MISSING)


def _certify(bundle: Path, key: Path, out: Path) -> Path:
    spec = conditioned_weld_spec(EPISODES)
    return certify_quietly(bundle, spec, MASTER_SEED, key, out, stills=STILL_EPISODES)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("report")
    key, pub = generate_keypair(root / "keys")
    _, other_pub = generate_keypair(root / "other_keys")
    bundle = write_scripted_weld_bundle(root / "scripted")
    return {
        "root": root,
        "key": key,
        "pub": pub,
        "other_pub": other_pub,
        "bundle": bundle,
        "cert_dir": _certify(bundle, key, root / "cert"),
    }


@pytest.fixture
def cert_dir(world: dict[str, Any], tmp_path: Path) -> Path:
    """A private copy of the certificate directory."""
    return Path(shutil.copytree(world["cert_dir"], tmp_path / "cert"))


class _Resources(HTMLParser):
    """Collects every tag name and every URL-bearing attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.csp: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "action")]
        if tag == "meta" and values.get("http-equiv") == "Content-Security-Policy":
            self.csp.append(values.get("content") or "")


def _page(cert_dir: Path) -> str:
    return (cert_dir / "report.html").read_text()


# ---------------------------------------------------------------- the file
def test_report_html_is_signed_and_self_contained(world: dict[str, Any]) -> None:
    cert_dir = world["cert_dir"]
    verified = verify_certificate(cert_dir, world["pub"], world["bundle"])
    assert verified.predicate["report"]["report.html"] == sha256_file(cert_dir / "report.html")
    page = _page(cert_dir)
    resources = _Resources()
    resources.feed(page)
    assert resources.csp == ["default-src 'none'; img-src data:; style-src 'unsafe-inline'"]
    assert not {"script", "link", "iframe", "object", "embed"} & set(resources.tags)
    assert "url(" not in page and "@import" not in page
    assert resources.urls and all(u.startswith("data:image/png;base64,") for u in resources.urls)
    signed_pngs = {
        sha256_file(cert_dir / name) for name in verified.predicate["report"] if name[-4:] == ".png"
    }
    inline = {sha256_bytes(base64.b64decode(u.split(",", 1)[1])) for u in resources.urls}
    assert inline <= signed_pngs and len(inline) >= 2 * STILL_EPISODES + 2


def test_report_html_shows_verdict_criteria_robustness_and_digests(world: dict[str, Any]) -> None:
    predicate = verify_certificate(world["cert_dir"], world["pub"]).predicate
    page = _page(world["cert_dir"])
    assert f'<div class="badge">{predicate["verdict"]}</div>' in page
    for criterion in predicate["criteria"] + predicate["bucket_criteria"]:
        assert f"<td>{criterion['name']}</td>" in page
        assert f"{criterion['clopper_pearson_lower']:.4f}" in page
    for condition in predicate["robustness"]:
        assert f"<h3>{condition['name']}: <code>{condition['metric']}</code>" in page
        for bucket in condition["buckets"]:
            assert f"<td>{bucket['name']}</td>" in page
    for figure in predicate["figures"]:
        assert f"<strong>{figure['name']}</strong>" in page
    digests = [predicate["benchmark"]["spec_digest"], predicate["episodes"]["log_sha256"]]
    digests += [sha256_file(world["bundle"] / name) for name in ("policy.onnx", "manifest.json")]
    assert all(digest in page for digest in digests)
    assert "robocell verify CERT_DIR/certificate.json --pubkey" in page


def test_text_from_the_spec_is_escaped(world: dict[str, Any]) -> None:
    verified = verify_certificate(world["cert_dir"], world["pub"])
    predicate = json.loads(json.dumps(verified.predicate))
    spec = predicate["benchmark"]["spec"]
    spec["description"] = "<script>alert('spec')</script>"
    spec["conditions"][0]["buckets"][0]["name"] = "<img src=x onerror=alert(1)>"
    page = render_html(predicate, verified.subject_digests, verified.episodes, {})
    assert "<script" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#x27;spec&#x27;)&lt;/script&gt;" in page


def test_stills_are_first_and_last_frames_of_replayed_episodes(world: dict[str, Any]) -> None:
    import imageio.v3 as iio

    cert_dir = world["cert_dir"]
    log = [json.loads(line) for line in (cert_dir / "episodes.jsonl").read_text().splitlines()]
    chosen = [r["index"] for r in pick_episodes(log, STILL_EPISODES)]
    stills = sorted(p.name for p in (cert_dir / "stills").iterdir())
    assert stills == [f"episode_{i:04d}_{m}.png" for i in chosen for m in ("first", "last")]
    for index in chosen:
        first = iio.imread(cert_dir / "stills" / f"episode_{index:04d}_first.png")
        last = iio.imread(cert_dir / "stills" / f"episode_{index:04d}_last.png")
        assert first.shape == last.shape == (240, 320, 3)
        assert first.std() > 10 and np.abs(first.astype(int) - last).max() > 50  # the arm moved


def test_pick_episodes_shows_the_first_failure() -> None:
    log = [{"index": i, "metrics": {"success": float(i != 5)}} for i in range(8)]
    assert [r["index"] for r in pick_episodes(log, 3)] == [0, 1, 5]
    assert [r["index"] for r in pick_episodes(log, 1)] == [5]
    assert pick_episodes(log, 0) == []


def test_the_same_inputs_give_the_same_certificate(world: dict[str, Any], tmp_path: Path) -> None:
    again = _certify(world["bundle"], world["key"], tmp_path / "cert")
    first, second = (read_statement(d / "certificate.json") for d in (world["cert_dir"], again))
    timing = ("run", "report")
    assert {k: v for k, v in first["predicate"].items() if k not in timing} == {
        k: v for k, v in second["predicate"].items() if k not in timing
    }
    for name in first["predicate"]["report"]:
        if name.endswith(".png"):
            assert (world["cert_dir"] / name).read_bytes() == (again / name).read_bytes(), name
    pages = []
    for cert_dir, statement in ((world["cert_dir"], first), (again, second)):
        page, run = _page(cert_dir), statement["predicate"]["run"]
        for key in ("started_at", "finished_at", "episodes_wall_time_s"):
            page = page.replace(str(run[key]), key)
        pages.append(page)
    assert pages[0] == pages[1]  # the pages differ only in the run's timing


# ---------------------------------------------------------------- robocell report
def test_robocell_report_rebuilds_the_signed_page(
    world: dict[str, Any], cert_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    signed = (cert_dir / "report.html").read_bytes()
    assert main(["report", str(cert_dir), "--pubkey", str(world["pub"])]) == 0
    assert "identical to the signed report.html" in capsys.readouterr().out
    assert (cert_dir / "report.html").read_bytes() == signed
    out = tmp_path / "rebuilt.html"
    args = ["report", str(cert_dir / "certificate.json"), "--pubkey", str(world["pub"])]
    assert main([*args, "-o", str(out)]) == 0
    assert out.read_bytes() == signed


def test_robocell_report_rebuilds_a_deleted_report_html(
    world: dict[str, Any], cert_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    signed = (cert_dir / "report.html").read_bytes()
    (cert_dir / "report.html").unlink()
    assert main(["report", str(cert_dir), "--pubkey", str(world["pub"])]) == 0
    assert "identical to the signed report.html" in capsys.readouterr().out
    assert (cert_dir / "report.html").read_bytes() == signed
    # The rebuilt page is the signed one again, so the full check passes.
    assert verify_certificate(cert_dir, world["pub"]).verdict
    (cert_dir / "report.md").write_text("edited")  # a present file must still match
    assert main(["report", str(cert_dir), "--pubkey", str(world["pub"])]) == 1
    assert "report.md does not match its signed sha256" in capsys.readouterr().err


def test_robocell_report_refuses_what_it_cannot_verify(
    world: dict[str, Any], cert_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out.html"
    assert main(["report", str(cert_dir), "--pubkey", str(world["other_pub"]), "-o", str(out)]) == 1
    assert "robocell report: error: " in capsys.readouterr().err and not out.exists()
    assert main(["report", str(tmp_path / "nowhere"), "--pubkey", str(world["pub"])]) == 2
    assert "no such file, expected a certificate" in capsys.readouterr().err
    out.write_text("someone's notes")
    assert main(["report", str(cert_dir), "--pubkey", str(world["pub"]), "-o", str(out)]) == 2
    assert "differs from the rebuilt report" in capsys.readouterr().err
    assert out.read_text() == "someone's notes"
    log = cert_dir / "episodes.jsonl"
    log.write_bytes(log.read_bytes().replace(b'"success":1.0', b'"success":0.0', 1))
    assert main(["report", str(cert_dir), "--pubkey", str(world["pub"]), "-o", str(out)]) == 1
    assert "episode log" in capsys.readouterr().err
    with pytest.raises(SystemExit) as missing_key:
        main(["report", str(cert_dir)])
    assert missing_key.value.code == 2


def test_robocell_report_writes_the_page_a_certificate_lacks(
    world: dict[str, Any], cert_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    signed = (cert_dir / "report.html").read_bytes()
    (cert_dir / "report.html").unlink()  # as a certificate from before report.html existed
    resign(
        cert_dir / "certificate.json",
        world["key"],
        lambda s: s["predicate"]["report"].pop("report.html"),
    )
    assert main(["report", str(cert_dir), "--pubkey", str(world["pub"])]) == 0
    assert "the certificate signs no report.html" in capsys.readouterr().out
    assert (cert_dir / "report.html").read_bytes() == signed
    verify_certificate(cert_dir, world["pub"])  # an unsigned extra file changes nothing


# ---------------------------------------------------------------- as a person sees it
@needs_chromium
def test_the_browser_check_sees_console_errors_and_blank_pages(tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!DOCTYPE html><html><head><meta http-equiv='Content-Security-Policy' "
        "content=\"img-src data:\"></head><body><h1>x</h1><img src='https://example.invalid/a.png'>"
        "<script>console.error('marker'); missingFunction();</script></body></html>"
    )
    messages = screenshot(broken, tmp_path / "broken.png", tmp_path / "a")
    assert any("marker" in m for m in messages)
    assert any("missingFunction" in m for m in messages)
    assert any("example.invalid" in m for m in messages)
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    assert screenshot(blank, tmp_path / "blank.png", tmp_path / "b") == []
    assert pixels(tmp_path / "blank.png").std() < 1.0


@needs_chromium
def test_report_html_renders_in_chromium(world: dict[str, Any], tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    messages = screenshot(world["cert_dir"] / "report.html", png, tmp_path)
    assert messages == []
    image = pixels(png)
    assert image.shape == (1600, 1200, 3)
    assert image.std() > 20  # not a blank page
    assert share_of_colour(image, PASSED_BADGE_RGB) > 0.002  # the verdict's colours
    assert share_of_colour(image, FULL_SUCCESS_RGB) > 0.002  # the heat map's cells
