"""`annotate serve` end to end in a real headless Chromium (Debian's chromium + chromium-driver,
driven by Selenium): open the page on the sample store, filter to attacks, open a sample, toggle an
overlay, flag it (the page sends the sample_id it showed), and read the flag from the store; then a
row whose sample changed under the page (a re-created store) refuses the flag and keeps its value.
A deep link opens its filter, range, sort and sample (and flags it); a brush over a histogram sets a
range whose count is the route's, and back / forward walk the views; failed rows show their source
frame and status; with --compare the sample view shows B's layers and the row's IoUs. Screenshots go
to test-artifacts/serve/."""

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import zarr

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")) / "serve"


@pytest.fixture
def browser(tmp_path_factory):
    if not (CHROMIUM and DRIVER):
        message = "no Debian chromium / chromedriver here (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run the browser test")
        pytest.skip(message + ": browser test skipped")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # no background traffic: this machine's network is closed, and Chromium would keep trying
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(flag)
    # its profile inside pytest's own temporary folder, not a new /tmp/org.chromium.* per test
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _serve(url, **options):
    from werkzeug.serving import make_server

    from annotator.serve import create_app

    srv = make_server("127.0.0.1", 0, create_app(url, allow_flags=True, **options), threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def server(sample_store, tmp_path):
    url = str(tmp_path / "qa.zarr")
    shutil.copytree(sample_store[0], url)
    srv = _serve(url)
    yield f"http://127.0.0.1:{srv.server_port}/", url
    srv.shutdown()


def test_filter_open_toggle_flag_in_chromium(browser, server):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    page, url = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # the grid is redrawn after each choice: an element of the old grid may go stale while waiting
    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(page)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".thumb")) == 15)
    root = zarr.open_group(url, mode="r")
    attacks = [i for i, a in enumerate(root["meta/is_attack"][:]) if a]
    Select(browser.find_element(By.ID, "filter-class")).select_by_value("attack")
    wait.until(lambda d: [int(t.get_attribute("data-row")) for t in d.find_elements(By.CSS_SELECTOR, ".thumb")] == attacks)
    Select(browser.find_element(By.ID, "overlay")).select_by_value("label")
    wait.until(lambda d: all("overlay=label" in i.get_attribute("src") and d.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth", i) for i in d.find_elements(By.CSS_SELECTOR, ".thumb img")))
    browser.save_screenshot(str(ARTIFACTS / "grid_attacks.png"))

    browser.find_elements(By.CSS_SELECTOR, ".thumb")[0].click()
    wait.until(lambda d: d.find_element(By.ID, "view").is_displayed())
    row = attacks[0]
    assert f"row {row}:" in browser.find_element(By.ID, "view-title").text
    layer = browser.find_element(By.ID, "layer-attack")
    wait.until(lambda d: f"/layer/{row}/attack.png" in layer.get_attribute("src"))
    assert float(layer.value_of_css_property("opacity")) == pytest.approx(0.5)
    browser.find_element(By.TAG_NAME, "body").send_keys("o")  # overlays off
    wait.until(lambda d: float(layer.value_of_css_property("opacity")) == 0.0)
    browser.find_element(By.TAG_NAME, "body").send_keys("o")  # and back
    wait.until(lambda d: float(layer.value_of_css_property("opacity")) == pytest.approx(0.5))
    browser.save_screenshot(str(ARTIFACTS / "sample_view.png"))

    browser.find_element(By.ID, "note").send_keys("eye cut-out not covered")
    browser.find_element(By.ID, "flag-bad").click()
    wait.until(lambda d: d.find_element(By.ID, "flag-status").text.startswith("flagged bad"))
    browser.save_screenshot(str(ARTIFACTS / "flagged.png"))
    qa = zarr.open_group(url, mode="r")["qa"]
    assert int(qa["flag"][row]) == 1 and str(qa["note"][row]) == "eye cut-out not covered"
    assert int(qa["flag"][:].sum()) == 1  # that sample only

    from annotator import store

    other = attacks[1]  # the store is re-created under the page: that row now holds another sample
    with zarr.config.set(store.WRITE_CONFIG):
        zarr.open_group(url, mode="r+", use_consolidated=False)["meta/sample_id"][other:other + 1] = \
            np.array(["re-created/another.jpg"], dtype=object)
    browser.find_element(By.ID, "next").click()
    wait.until(lambda d: f"row {other}:" in d.find_element(By.ID, "view-title").text)
    browser.find_element(By.ID, "flag-bad").click()
    wait.until(lambda d: "now holds sample" in d.find_element(By.ID, "flag-status").text)
    browser.save_screenshot(str(ARTIFACTS / "stale_refused.png"))
    qa = zarr.open_group(url, mode="r")["qa"]
    assert int(qa["flag"][other]) == 0 and int(qa["flag"][:].sum()) == 1


def _wait(browser):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,))


def _total(browser) -> int | None:
    """The sample count the grid's page label shows."""
    import re

    from selenium.webdriver.common.by import By

    found = re.search(r"\((\d+) samples\)", browser.find_element(By.ID, "page-label").text)
    return int(found.group(1)) if found else None


def _route_total(page: str, current_url: str) -> int:
    """What GET /api/rows answers for the filters of the page's URL."""
    import json
    import urllib.request
    from urllib.parse import urlencode, urlsplit, parse_qsl

    params = [(k, v) for k, v in parse_qsl(urlsplit(current_url).query) if k not in ("sample", "page", "overlay")]
    with urllib.request.urlopen(page + "api/rows?" + urlencode(params)) as r:
        return json.load(r)["total"]


def test_a_deep_link_opens_its_view_and_the_brush_filters_like_the_route(browser, server):
    from urllib.parse import parse_qs, urlsplit

    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    page, url = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    wait = _wait(browser)
    root = zarr.open_group(url, mode="r")
    share, score = root["meta/share_attack"][:], root["meta/face_score"][:]
    chosen = [i for i in np.argsort(-score, kind="stable") if root["meta/is_attack"][i] and share[i] >= 0.01]
    row = int(chosen[1])  # not the first of the page: the link, not the grid, chooses it
    browser.get(page + f"?class=attack&range=share_attack:0.01..&sort=face_score&order=desc&sample={row}")
    wait.until(lambda d: f"row {row}:" in d.find_element(By.ID, "view-title").text)
    assert Select(browser.find_element(By.ID, "filter-class")).first_selected_option.get_attribute("value") == "attack"
    assert Select(browser.find_element(By.ID, "sort")).first_selected_option.text == "face_score"
    assert Select(browser.find_element(By.ID, "order")).first_selected_option.get_attribute("value") == "desc"
    assert "share_attack ≥ 0.01" in browser.find_element(By.CSS_SELECTOR, '#ranges .chip[data-column="share_attack"]').text
    wait.until(lambda d: [int(t.get_attribute("data-row")) for t in d.find_elements(By.CSS_SELECTOR, ".thumb")] == chosen)
    browser.find_element(By.ID, "note").send_keys("deep-linked")
    browser.find_element(By.ID, "flag-bad").click()  # the sample the link opened, by the id the page showed
    wait.until(lambda d: d.find_element(By.ID, "flag-status").text.startswith("flagged bad"))
    qa = zarr.open_group(url, mode="r")["qa"]
    assert int(qa["flag"][row]) == 1 and str(qa["note"][row]) == "deep-linked" and int(qa["flag"][:].sum()) == 1
    browser.save_screenshot(str(ARTIFACTS / "deep_link.png"))

    browser.get(page)  # the whole store: brush the left half of landmark_confidence's histogram
    wait.until(lambda d: _total(d) == 15 and d.execute_script("return Object.keys(HIST.data).length") > 5)
    canvas = browser.find_element(By.CSS_SELECTOR, "#hist-landmark_confidence canvas")
    width = canvas.size["width"]
    ActionChains(browser).move_to_element_with_offset(canvas, -width // 2 + 2, 0).click_and_hold() \
        .move_by_offset(width // 2 - 10, 0).release().perform()
    wait.until(lambda d: "landmark_confidence" in parse_qs(urlsplit(d.current_url).query).get("range", [""])[0])
    brushed = _route_total(page, browser.current_url)
    assert 0 < brushed < 15
    wait.until(lambda d: _total(d) == brushed)
    assert browser.find_element(By.CSS_SELECTOR, '#ranges .chip[data-column="landmark_confidence"]')
    browser.save_screenshot(str(ARTIFACTS / "brushed.png"))
    browser.back()  # the view before the brush
    wait.until(lambda d: _total(d) == 15 and not d.find_elements(By.CSS_SELECTOR, "#ranges .chip"))
    browser.forward()
    wait.until(lambda d: _total(d) == brushed and d.find_elements(By.CSS_SELECTOR, "#ranges .chip"))


def test_failed_rows_show_their_source_frame_and_status(browser, messy_store):
    from selenium.webdriver.common.by import By

    url, _, meta = messy_store
    srv = _serve(url)
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        wait = _wait(browser)
        browser.get(f"http://127.0.0.1:{srv.server_port}/?status=no_face")
        noface = meta["sample_id"].index("bonafide/d_noface.png")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'.thumb[data-row="{noface}"] .status'))
        tile = browser.find_element(By.CSS_SELECTOR, f'.thumb[data-row="{noface}"]')
        assert tile.find_element(By.CSS_SELECTOR, ".status").text.startswith("no_face: no face detected")
        img = tile.find_element(By.TAG_NAME, "img")
        wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) == 128)
        assert f"/source/{noface}.jpg" in img.get_attribute("src")  # the frame, not the black crop
        browser.save_screenshot(str(ARTIFACTS / "failed_rows.png"))
        tile.click()
        wait.until(lambda d: d.find_element(By.ID, "view-error").text.startswith("no_face: no face detected"))
        layer = browser.find_element(By.ID, "layer-image")
        wait.until(lambda d: layer.get_attribute("src").startswith("blob:"))
        browser.save_screenshot(str(ARTIFACTS / "failed_view.png"))
        browser.get(f"http://127.0.0.1:{srv.server_port}/?status=unreadable")  # no frame to decode: the black crop
        corrupt = meta["sample_id"].index("bonafide/c_corrupt.jpg")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'.thumb.no-source[data-row="{corrupt}"]'))
        assert "unreadable: cannot read image" in browser.find_element(By.CSS_SELECTOR, f'.thumb[data-row="{corrupt}"] .status').text
    finally:
        srv.shutdown()


def test_compare_view_shows_b_layers_and_ious(browser, sample_store, tmp_path):
    from selenium.webdriver.common.by import By

    from annotator import store

    a, b = sample_store[0], str(tmp_path / "b.zarr")
    shutil.copytree(a, b)
    row = int(np.flatnonzero(zarr.open_group(a, mode="r")["meta/is_attack"][:])[0])
    with zarr.config.set(store.WRITE_CONFIG):  # B: the attack channel of that row cut in half
        w = zarr.open_group(b, mode="r+", use_consolidated=False)
        label = w["label"][row]
        label[0, :, : label.shape[-1] // 2] = 0
        w["label"][row] = label
    srv = _serve(a, compare=b)
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        wait = _wait(browser)
        browser.get(f"http://127.0.0.1:{srv.server_port}/?sample={row}")
        wait.until(lambda d: d.find_element(By.ID, "compare").is_displayed())
        layer = browser.find_element(By.ID, "b-layer-attack")
        wait.until(lambda d: f"/compare/{row}/attack.png" in (layer.get_attribute("src") or "") and d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", layer) > 0)
        wait.until(lambda d: "IoU channels: attack" in d.find_element(By.ID, "compare-iou").text)
        text = browser.find_element(By.ID, "compare-iou").text
        assert f"B row {row}" in text and "IoU regions" in text
        assert float(layer.value_of_css_property("opacity")) == pytest.approx(0.5)  # under A's slider
        browser.save_screenshot(str(ARTIFACTS / "compare.png"))
    finally:
        srv.shutdown()
