"""The report in a real browser: Debian's chromium, driven by Playwright through `executable_path`.

The page renders with no console error, every chart is an image with pixels, every account name
is visible, and it prints to PDF (A4). A screenshot is kept beside the test's files and copied to
/tmp/bluepulse-report-shot.png for a person to look at. A missing chromium fails the test:
`scripts/chromium` installs it (scripts/test runs it first).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path
from typing import Final

from playwright.sync_api import ConsoleMessage, sync_playwright

from tests.support.barometer_quarter import generate_quarter, write_store
from tests.support.processes import bluepulse_argv, clean_env

SHOT: Final = Path("/tmp/bluepulse-report-shot.png")
ARGS: Final = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium() -> str:
    found = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium")
    assert found, "no chromium: run scripts/chromium (installs Debian's chromium package)"
    return found


def test_the_report_renders_prints_and_shows_every_account_in_chromium(tmp_path: Path) -> None:
    q = generate_quarter()
    db = tmp_path / "store.duckdb"
    write_store(q, db)
    out = tmp_path / "report"
    done = subprocess.run(
        bluepulse_argv("report", "--quarter", "2025Q1", "--db", str(db), "--out", str(out)),
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with (out / "barometer.csv").open(encoding="utf-8") as f:
        names = [row["name"] for row in csv.DictReader(f)]
    assert len(names) == 65

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1400})

            def console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    errors.append(message.text)

            page.on("console", console)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "request", lambda r: None if r.url.startswith(("file:", "data:")) else errors.append(r.url)
            )
            page.goto((out / "index.html").as_uri())
            page.wait_for_load_state("load")
            charts = page.locator("figure.chart img")
            assert charts.count() == 4
            sizes = charts.evaluate_all("els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")
            assert all(ok and w > 100 and h > 100 for ok, w, h in sizes), sizes
            assert all(charts.nth(i).is_visible() for i in range(4))
            assert page.locator("figure.chart figcaption").count() == 4
            visible = page.locator("table.accounts td.account")
            assert visible.count() == 65
            shown = set(visible.evaluate_all("els => els.map(e => e.innerText.split('\\n')[0])"))
            assert shown == set(names)
            assert all(visible.nth(i).is_visible() for i in range(0, 65, 8))
            assert "1er trimestre 2025" in page.locator("header").inner_text()
            page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
            pdf = page.pdf(format="A4", print_background=True)
        finally:
            browser.close()
    assert errors == []
    assert pdf.startswith(b"%PDF")
    assert len(pdf) > 20_000
    (tmp_path / "report.pdf").write_bytes(pdf)
    shutil.copyfile(tmp_path / "report.png", SHOT)
