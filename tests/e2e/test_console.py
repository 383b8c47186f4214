# ruff: noqa: F811 - `browser` is the fixture imported from console_browser
"""The web console as a person uses it, in a real browser against the running lab: log in, send from the
form, watch the message on the map, read its journey across both sites after `yubin fetch`, break the
other site's MX and see the deferral, and a subject full of markup that must stay text."""

import re
import time
from pathlib import Path

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.e2e.conftest import Lab
from tests.e2e.console_browser import PHONE, browser, screenshot, visible, wait  # noqa: F401 (fixture)
from tests.e2e.mail import token, wait_for_message, yubin

ALICE, BOB = "alice@alpha.test", "bob@beta.test"
EVIL = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


def log_in(driver, lab: Lab) -> None:
    driver.get(lab.info["console"])
    field = visible(driver, "#secret")
    field.send_keys(lab.info["console_password"])
    driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    visible(driver, "#nav")


def send_from_form(driver, subject: str, to: str = BOB) -> str:
    driver.get(driver.current_url.split("#")[0] + "#/send")
    Select(visible(driver, "#send-from")).select_by_value(ALICE)
    for field, value in (("#send-to", to), ("#send-subject", subject), ("#send-body", "from the console")):
        element = driver.find_element(By.CSS_SELECTOR, field)
        element.clear()
        element.send_keys(value)
    driver.find_element(By.CSS_SELECTOR, "#send-submit").click()
    # The link to the sent message, or the form's error (what the submission server or the console said).
    wait(driver).until(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, "#send-result a") or d.find_element(By.ID, "send-error").text
        )
    )
    links = driver.find_elements(By.CSS_SELECTOR, "#send-result a")
    assert links, f"the send form says: {driver.find_element(By.ID, 'send-error').text}"
    return links[0].text


def ticker(driver, message_id: str) -> str:
    """The map's latest steps of one message, as the page shows them (the list is redrawn on each event)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#ticker li')]"
        ".filter((li) => li.dataset.messageId === arguments[0]).map((li) => li.textContent).join('\\n')",
        message_id,
    )


def open_journey(driver, message_id: str) -> None:
    driver.get(driver.current_url.split("#")[0] + "#/messages")
    query = visible(driver, "#q")
    query.clear()
    query.send_keys(message_id)
    driver.find_element(By.CSS_SELECTOR, "#search-form button").click()
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#messages tbody a"))
    driver.find_element(By.CSS_SELECTOR, "#messages tbody a").click()
    visible(driver, "#timeline li")


def steps(driver) -> set[tuple[str, str, str]]:
    return {
        (li.get_attribute("data-site"), li.get_attribute("data-service"), li.get_attribute("data-event"))
        for li in driver.find_elements(By.CSS_SELECTOR, "#timeline li")
    }


def reload_until(driver, what, probe, timeout: float = 40.0):
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; the page has {sorted(steps(driver))}")
        time.sleep(0.7)
        driver.refresh()
        visible(driver, "#timeline li")


NONZERO_RATE = re.compile(r"(?:[1-9][\d.]*|0\.\d*[1-9]\d*)/min")


def node_stats(driver, key: str) -> str:
    """The figures the map shows at one node (`site/role`), e.g. `2/min · 0 waiting`."""
    return driver.find_element(By.CSS_SELECTOR, f'[data-node="{key}"] .node-stats').text


def test_a_wrong_password_is_refused(browser, lab: Lab) -> None:
    browser.get(lab.info["console"])
    visible(browser, "#secret").send_keys("not-the-password")
    browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    wait(browser).until(lambda d: d.find_element(By.ID, "login-error").text)
    assert browser.find_element(By.ID, "nav").is_displayed() is False


def test_send_watch_the_map_and_read_the_journey_across_both_sites(browser, lab: Lab, tmp_path: Path) -> None:
    log_in(browser, lab)
    subject = token()
    message_id = send_from_form(browser, subject)
    assert message_id.startswith("<") and message_id.endswith("@alpha.test>")

    browser.get(browser.current_url.split("#")[0] + "#/map")
    wait(browser).until(lambda d: "delivery stored" in ticker(d, message_id))
    assert subject in ticker(browser, message_id)
    # The hops' figures come from the services' /metrics, scraped every few seconds: they move too.
    wait(browser, 60).until(lambda d: NONZERO_RATE.match(node_stats(d, "beta.test/mailbox")))
    screenshot(browser, "console-map", tmp_path)

    wait_for_message(lab, BOB, subject)
    yubin(lab, "fetch", "--lab", "--user", BOB, "--stdout")

    open_journey(browser, message_id)
    reload_until(browser, "the POP3 retrieval", lambda: ("beta.test", "pop3", "retrieved") in steps(browser))
    seen = steps(browser)
    assert ("alpha.test", "submission", "accepted") in seen
    assert ("alpha.test", "relay", "mx-lookup") in seen
    assert ("beta.test", "mx", "accepted") in seen
    assert ("beta.test", "delivery", "stored") in seen
    timeline = browser.find_element(By.ID, "timeline").text
    assert "after previous" in timeline
    assert "250" in timeline  # the remote reply to the relay's attempt
    screenshot(browser, "console-timeline", tmp_path)
    browser.set_window_size(*PHONE)
    screenshot(browser, "console-timeline-phone", tmp_path)


def test_markup_in_a_subject_stays_text(browser, lab: Lab, tmp_path: Path) -> None:
    log_in(browser, lab)
    message_id = send_from_form(browser, EVIL)
    browser.get(browser.current_url.split("#")[0] + "#/map")
    wait(browser).until(lambda d: ticker(d, message_id))
    assert EVIL[:40] in ticker(browser, message_id)
    open_journey(browser, message_id)
    assert browser.find_element(By.ID, "message-subject").text == EVIL
    assert browser.find_elements(By.CSS_SELECTOR, "main script, main img") == []
    assert browser.execute_script("return typeof window.__xss") == "undefined"
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018


def test_a_fault_at_the_other_sites_mx_shows_as_a_deferral(browser, lab: Lab) -> None:
    log_in(browser, lab)
    browser.get(browser.current_url.split("#")[0] + "#/faults")
    Select(visible(browser, "#fault-site")).select_by_value("beta.test")
    Select(browser.find_element(By.ID, "fault-kind")).select_by_value("smtp-reply")
    reply = browser.find_element(By.ID, "fault-reply")
    reply.clear()
    # A remote reply is attacker-controlled too: it must show as text.
    reply.send_keys('451 4.3.0 <img src=x onerror="window.__xss = 3">')
    browser.find_element(By.CSS_SELECTOR, "#fault-form button[type=submit]").click()
    wait(browser).until(lambda d: "onerror" in d.find_element(By.ID, "faults").text)
    try:
        message_id = send_from_form(browser, token())
        open_journey(browser, message_id)
        reload_until(browser, "the deferral", lambda: ("alpha.test", "relay", "deferred") in steps(browser))
        assert (
            '451 4.3.0 <img src=x onerror="window.__xss = 3">' in browser.find_element(By.ID, "timeline").text
        )
        assert browser.execute_script("return typeof window.__xss") == "undefined"
        # While the fault lasts the message waits in alpha's retry set, with the reply as its last error.
        queue_id = browser.find_element(By.CSS_SELECTOR, "#timeline li .qid").text
        browser.get(browser.current_url.split("#")[0] + "#/queues")
        deadline = time.monotonic() + 30
        while not ("451 4.3.0" in (text := browser.find_element(By.ID, "queues").text) and queue_id in text):
            assert time.monotonic() < deadline, f"{queue_id} not in the queues page: {text}"
            time.sleep(0.5)
            browser.refresh()
            visible(browser, "#queues h2")
    finally:
        browser.get(browser.current_url.split("#")[0] + "#/faults")
        remove = visible(browser, "#faults button")
        remove.click()
        visible(browser, "#confirm-ok").click()
        wait(browser).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#faults button"))
    # Without the fault the next retry delivers it (the e2e lab retries after 1 s, then 2 s).
    open_journey(browser, message_id)
    reload_until(
        browser, "the delivery after the fault", lambda: ("beta.test", "delivery", "stored") in steps(browser)
    )


def test_labels_switch_to_japanese_and_stay(browser, lab: Lab) -> None:
    log_in(browser, lab)
    nav = browser.find_element(By.CSS_SELECTOR, "#nav a[href='#/map']")
    assert nav.text == "Live map"
    browser.find_element(By.ID, "lang").click()
    wait(browser).until(lambda d: nav.text == "ライブマップ")
    assert "郵便受け" in browser.find_element(By.ID, "map").text
    browser.refresh()
    wait(browser).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#nav a[href='#/map']").text == "ライブマップ"
    )
    browser.find_element(By.ID, "lang").click()


def test_a_subject_sent_over_smtp_shows_as_text_on_the_map_search_and_journey(browser, lab: Lab) -> None:
    """Not from the console's form: the console learns the subject from the `accepted` trace event."""
    import smtplib  # here, not at the top: this test is added beside other changes to the file's head

    from tests.e2e.mail import hostport

    subject = '<img src=x onerror="window.__xss2=1">'
    message_id = f"<{token()}@alpha.test>"
    log_in(browser, lab)
    host, port = hostport(lab.site("alpha.test")["submission"])
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        smtp.login(ALICE, lab.password(ALICE))
        message = (
            f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n\r\nHi.\r\n"
        )
        smtp.sendmail(ALICE, [BOB], message.encode())

    browser.get(browser.current_url.split("#")[0] + "#/map")
    wait(browser).until(lambda d: "delivery stored" in ticker(d, message_id))
    # Every step shows it, beta's delivery too, though only alpha's and beta's accepted events carry it.
    steps_shown = ticker(browser, message_id).splitlines()
    assert steps_shown and all(subject in step for step in steps_shown), steps_shown

    open_journey(browser, message_id)  # searches by Message-ID, then opens the result
    assert browser.find_element(By.ID, "message-subject").text == subject
    browser.back()
    link = wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#messages tbody a"))[0]
    assert link.text == subject

    assert browser.find_elements(By.CSS_SELECTOR, "main img, main script") == []
    assert browser.execute_script("return typeof window.__xss2") == "undefined"
