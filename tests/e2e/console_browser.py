"""Debian's chromium, headless, driven by Selenium through the system chromedriver (nothing downloaded)."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.fixtures.binaries import require_binary

DESKTOP = (1280, 900)
PHONE = (390, 844)
SCREENSHOTS_ENV = "YUBIN_CONSOLE_SCREENSHOTS"
"""A directory to write the console's screenshots to (`docs/img` refreshes the README's)."""


def browser_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed; apt-get install chromium chromium-driver", pytrace=False)
    return found


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[webdriver.Chrome]:
    # Selenium Manager would look for (and download) a driver and a browser: give it both, and forbid it.
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = browser_binary()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--lang=en-GB",
    ):
        options.add_argument(arg)
    service = Service(executable_path=require_binary("chromedriver", "chromium-driver"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_window_size(*DESKTOP)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: webdriver.Chrome, timeout: float = 30.0) -> WebDriverWait:
    return WebDriverWait(driver, timeout, poll_frequency=0.2)


def visible(driver: webdriver.Chrome, css: str, timeout: float = 30.0) -> WebElement:
    return wait(driver, timeout).until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


def screenshot(driver: webdriver.Chrome, name: str, tmp_path: Path) -> Path:
    target = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
