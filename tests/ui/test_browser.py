"""The ML Connector page in a real browser (Debian's headless Chromium, driven by Selenium) on a
real Airflow (``airflow standalone`` as ``make up`` starts it, via demo.prepare) with the plugin,
against the sandbox: the on-call story of the demo's meals bill."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import requests

from airflow_provider_mlconnector import demo
from airflow_provider_mlconnector.sandbox.server import SandboxControl
from airflow_provider_mlconnector.state import StateStore

# Starting Airflow and two runs of the pair take minutes on a shared 2-core machine.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("demo"), pytest.mark.timeout(1800)]
PAIR = "freshbooks_to_bill"
ORG = "00802BRTSIDEMKT0001A"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


@pytest.fixture(scope="module")
def airflow_with_a_dead_letter(tmp_path_factory):
    env = demo.DemoEnv(tmp_path_factory.mktemp("ui"), demo.free_port(0), demo.free_port(0))
    # A second, read-only login (the simple auth manager generates its password at start-up).
    env.environ_cached["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = f"{demo.UI_USER}:admin,viewer:viewer"
    try:
        demo.prepare(env, seed=None)
    except SystemExit:
        # prepare() gives the API server 180 s; a loaded shared CI machine may need longer.
        demo.wait_for(f"http://127.0.0.1:{env.api_port}/api/v2/version", 900, "the Airflow API server")
    try:
        demo.wait_until_parsed(env, [PAIR])
        run_id, state = demo.run_scheduled(env, PAIR, timeout=900)
        assert state == "success", run_id
        yield env
    finally:
        demo.stop(env)


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("apt-get install chromium chromium-driver (make system-deps)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.implicitly_wait(10)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _snapshot(driver, name: str) -> None:
    """The README's screenshots: saved as ``<name>.png`` when ``MLCONNECTOR_SCREENSHOTS`` names a folder."""
    folder = os.environ.get("MLCONNECTOR_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def _sign_in(driver, env, user: str) -> str:
    """Log in as ``user`` the way the Airflow UI does (its ``_token`` cookie); returns the base URL."""
    base = f"http://127.0.0.1:{env.api_port}"
    passwords = json.loads((env.airflow_home / "simple_auth_manager_passwords.json.generated").read_text())
    token = requests.post(f"{base}/auth/token", json={"username": user, "password": passwords[user]}, timeout=10)
    assert token.status_code in (200, 201), token.text
    driver.get(f"{base}/api/v2/version")
    driver.delete_all_cookies()
    driver.add_cookie({"name": "_token", "value": token.json()["access_token"], "path": "/"})
    return base


def _open_meals_letter(driver, base: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver.get(f"{base}/mlconnector-ui/letters")
    Select(driver.find_element(By.NAME, "pair")).select_by_visible_text(PAIR)
    Select(driver.find_element(By.NAME, "kind")).select_by_visible_text("unmapped_account")
    unfiltered = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, "apply").click()
    # The form reloads the page: read the rows of the filtered page, not the ones it replaces.
    WebDriverWait(driver, 60).until(expected_conditions.staleness_of(unfiltered))
    rows = driver.find_elements(By.CSS_SELECTOR, "#letters tr.letter")
    assert len(rows) == 1 and "Meals & Entertainment" in rows[0].text
    _snapshot(driver, "dead-letters")
    rows[0].find_element(By.TAG_NAME, "a").click()
    assert "Dead letter #" in driver.find_element(By.TAG_NAME, "h2").text


def test_the_page_is_in_airflow_navigation_and_a_read_only_user_cannot_replay(airflow_with_a_dead_letter, browser):
    from selenium.webdriver.common.by import By

    env = airflow_with_a_dead_letter
    base = _sign_in(browser, env, "viewer")
    browser.get(f"{base}/")
    browser.find_element(By.XPATH, "//a[contains(., 'ML Connector')] | //button[contains(., 'ML Connector')]").click()
    browser.switch_to.frame(browser.find_element(By.TAG_NAME, "iframe"))
    section = browser.find_element(By.ID, f"pair-{PAIR}")
    assert "unmapped_account" in section.text and "created" in section.text
    browser.switch_to.default_content()
    _snapshot(browser, "overview-in-airflow")

    _open_meals_letter(browser, base)
    assert browser.find_element(By.ID, "replay").get_attribute("disabled") is not None
    assert "may look but not replay" in browser.find_element(By.ID, "read-only").text
    forged = browser.execute_script(
        "return fetch(location.pathname + '/replay', {method: 'POST', redirect: 'manual'}).then(r => r.status)"
    )
    assert forged == 403
    assert browser.find_element(By.ID, "status").text == "open"


def test_replay_from_the_page_is_written_by_the_next_run_and_audited_with_the_user(airflow_with_a_dead_letter, browser):
    from selenium.webdriver.common.by import By

    env = airflow_with_a_dead_letter
    store = StateStore(env.environ()["MLCONNECTOR_STATE_URL"], fernet_keys=[env.environ()["MLCONNECTOR_FERNET_KEY"]])
    base = _sign_in(browser, env, demo.UI_USER)
    _open_meals_letter(browser, base)
    assert (
        "***" in browser.find_element(By.ID, "payload").text or "Meals" in browser.find_element(By.ID, "payload").text
    )

    # The accountant maps meals to Office Supplies (6040), then clicks Replay.
    demo.airflow(
        env, "variables", "set", "mlconnector_freshbooks_to_bill_gl_overrides", '{"Meals & Entertainment": "6040"}'
    )
    _snapshot(browser, "letter")
    browser.find_element(By.ID, "replay").click()
    assert "flagged for replay" in browser.find_element(By.ID, "done").text
    assert browser.find_element(By.ID, "status").text == "replay_requested"
    letter_url = browser.current_url.split("?")[0]

    assert demo.trigger_and_wait(env, PAIR, "after_replay", timeout=900) == "success"
    browser.get(letter_url)
    assert browser.find_element(By.ID, "status").text == "replayed"
    actions = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "tr.event td.action")]
    assert "replay_requested" in actions and "created" in actions and "replayed" in actions
    assert demo.UI_USER in [e.text for e in browser.find_elements(By.CSS_SELECTOR, "tr.event .by")]
    _snapshot(browser, "letter-replayed")
    bills = SandboxControl(env.sandbox_url).state("bill")["organizations"][ORG]["bills"]
    assert "NCC-778" in {b["invoice"]["invoiceNumber"] for b in bills}
    assert store.dead_letters.list(status="open", pair=PAIR) == []
