"""The demo page's session panel in headless Chromium (issue 11): the session list with this
device marked, ending another session, changing the password, and "log out everywhere",
which logs a second browser profile out at its next call.

Reuses the page helpers and fixtures of ``test_browser.py``.
"""

# ruff: noqa: F401, F811 - fixtures of test_browser, imported and requested by name

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_browser import (
    CHROMEDRIVER,
    CHROMIUM,
    CHROMIUM_FLAGS,
    DemoPage,
    Site,
    browser_available,
    driver,
    make_site,
)

from support import PASSWORD

NEW_PASSWORD = "another-staple-horse-9"
LONG_LIVED = {"JWTLITE_ACCESS_TOKEN_LIFETIME": "300", "JWTLITE_REFRESH_TOKEN_LIFETIME": "600"}


@pytest.fixture(scope="module")
def second_driver(
    browser_available: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """Another headless Chromium with its own profile: another device."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile-2')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield browser
    finally:
        browser.quit()


def _logged_in(driver: Any, site: Site, *, register: bool = False) -> DemoPage:
    page = DemoPage(driver, site.origin + "/")
    page.wait_for_text("status", "Connected to the API")
    if register:
        page.register("alice")
        page.wait_for_text("status", 'Registered "alice"')
    page.log_in("alice")
    page.wait_logged_in("alice")
    return page


def _sessions(page: DemoPage) -> list[Any]:
    from selenium.webdriver.common.by import By

    page.driver.execute_script("document.getElementById('status').textContent = '';")
    page.click("list-sessions")
    page.wait_for_text("status", "You are logged in")
    items: list[Any] = page.driver.find_elements(By.CSS_SELECTOR, "#sessions-list li.session")
    return items


@pytest.mark.browser
def test_list_end_one_and_log_out_everywhere_across_two_profiles(
    driver: Any, second_driver: Any, make_site: Callable[..., Site]
) -> None:
    from selenium.webdriver.common.by import By

    site = make_site(**LONG_LIVED)
    here = _logged_in(driver, site, register=True)
    there = _logged_in(second_driver, site)
    assert there.call_me()["username"] == "alice"

    items = _sessions(here)
    assert len(items) == 2
    current = [item for item in items if "current" in item.get_attribute("class")]
    assert len(current) == 1
    assert current[0].text.startswith("This device:")
    assert current[0].get_attribute("data-id") == here.claims("access")["jti"][:16]

    # End the other profile's session from here: its next call is refused.
    other = next(item for item in items if item not in current)
    other.find_element(By.CSS_SELECTOR, "button.end-session").click()
    here.wait_until(lambda: len(_sessions(here)) == 1, "the ended session to leave the list")
    there.click("call-me")
    there.wait_for_text("error", "please log in again")
    assert not there.visible("session")

    # Log in again over there, then log out everywhere from here.
    there.log_in("alice")
    there.wait_logged_in("alice")
    here.click("logout-all")
    here.wait_for_text("status", "Logged out everywhere")
    assert not here.visible("session")
    there.click("call-me")
    there.wait_for_text("error", "please log in again")
    assert not there.visible("session")
    assert here.script_errors() == []


@pytest.mark.browser
def test_change_password_keeps_this_device_and_ends_the_other(
    driver: Any, second_driver: Any, make_site: Callable[..., Site]
) -> None:
    site = make_site(**LONG_LIVED)
    here = _logged_in(driver, site, register=True)
    there = _logged_in(second_driver, site)

    for element_id, value in (("old-password", "wrong-password-1"), ("new-password", NEW_PASSWORD)):
        here.element(element_id).send_keys(value)
    here.click("change-password")
    here.wait_for_text("error", "old_password:")

    here.element("old-password").clear()
    here.element("old-password").send_keys(PASSWORD)
    here.element("new-password").clear()
    here.element("new-password").send_keys(NEW_PASSWORD)
    here.click("change-password")
    here.wait_for_text("status", "Password changed")
    assert here.call_me()["username"] == "alice"  # this device stays in
    assert len(_sessions(here)) == 1

    there.click("call-me")
    there.wait_for_text("error", "please log in again")
    there.log_in("alice", NEW_PASSWORD)
    there.wait_logged_in("alice")
    assert here.script_errors() == []
