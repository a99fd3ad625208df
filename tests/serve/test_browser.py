"""The web page in a real browser (Debian's chromium + chromedriver, driven by selenium): pick a user, see
20 recommendations with their reasons, add an item by its text and see where it ranks. `make browser`
installs the browser; without it the test is skipped with the reason. ``MMGEF_SCREENSHOT_DIR`` keeps the
screenshot (benchmarks/results/serve/page.png is made so)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="chromium / chromedriver not installed (`make browser`)")]
webdriver = pytest.importorskip("selenium.webdriver")
uvicorn = pytest.importorskip("uvicorn")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from mmgef.serve.app import create_app  # noqa: E402

# the flags a closed network needs: no background connections, no sandbox as root
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1500,1150"]


@pytest.fixture()
def served(minilm_run, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(minilm_run, db=tmp_path / "s.sqlite"), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the service did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


@pytest.fixture()
def browser(tmp_path):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=opts)
    yield driver
    driver.quit()


def test_page_shows_recommendations_and_a_new_item_added_by_text(served, browser, tmp_path):
    wait = WebDriverWait(browser, 60)
    browser.get(served)
    wait.until(lambda d: "users" in d.find_element(By.ID, "health").text)
    users = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#users .user"))
    user = users[0].text
    users[0].click()
    recs = wait.until(lambda d: (li := d.find_elements(By.CSS_SELECTOR, "#recs li")) and len(li) == 20 and li)
    assert browser.find_element(By.ID, "for").text == f"for {user}"
    assert all(float(x.find_element(By.CLASS_NAME, "score").text) for x in recs[:1])
    assert browser.find_elements(By.CSS_SELECTOR, "#history li") and browser.find_elements(By.CSS_SELECTOR, "#recs .why")
    thumbs = browser.find_elements(By.CSS_SELECTOR, "#recs img.thumb")
    assert len(thumbs) == 20  # the data's pictures, loaded from /items/{id}/image
    wait.until(lambda d: all(d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", t) == 48
                             for t in thumbs))

    title = browser.find_elements(By.CSS_SELECTOR, "#recs .item")[0].text.rsplit(" (", 1)[0]
    browser.find_element(By.ID, "newid").send_keys("brand-new")
    browser.find_element(By.ID, "newtitle").send_keys(title)
    browser.find_element(By.CSS_SELECTOR, "#add button").click()
    wait.until(lambda d: d.find_element(By.ID, "addmsg").text.startswith("added"))
    rank = wait.until(lambda d: re.search(r"brand-new ranks #(\d+) for", d.find_element(By.ID, "newrank").text))
    assert 1 <= int(rank.group(1)) <= 1000
    assert browser.find_element(By.ID, "simfor").text == "brand-new"
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#similar li")) == 10)
    shots = Path(os.environ.get("MMGEF_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shots / "page.png"))
    assert (shots / "page.png").stat().st_size > 10_000
