"""`annotate serve` end to end in a real headless Chromium (Debian's chromium + chromium-driver,
driven by Selenium): open the page on the sample store, filter to attacks, open a sample, toggle an
overlay, flag it (the page sends the sample_id it showed), and read the flag from the store; then a
row whose sample changed under the page (a re-created store) refuses the flag and keeps its value.
Screenshots go to test-artifacts/serve/."""

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
def browser():
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
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def server(sample_store, tmp_path):
    from werkzeug.serving import make_server

    from annotator.serve import create_app

    url = str(tmp_path / "qa.zarr")
    shutil.copytree(sample_store[0], url)
    srv = make_server("127.0.0.1", 0, create_app(url, allow_flags=True), threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
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
