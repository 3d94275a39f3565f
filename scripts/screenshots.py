"""Screenshots of the portal's main pages at a desktop's and a phone's width, for a look by eye (issue 22's closing
note asks for them). Run against a running portal, as someone who may open every page (an admin):

    .venv/bin/python scripts/screenshots.py http://127.0.0.1:8000 admin "$PORTAL_DEMO_PASSWORD" var/screenshots

It only reads: it never declares (the declaration page shown is the newest in the history; pass --declaration to
choose one). Files are named <page>-<width>.png; pages the account may not open are skipped and said so.
"""

import argparse
import os
import re
import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# (width, height): a laptop's screen and a phone's (iPhone 12–15).
SIZES = [(1280, 800), (390, 844)]
PAGES = [
    ("history", "/declarations/"),
    ("summary", "/declarations/summary/"),
    ("plans", "/plans/"),
    ("users", "/users/"),
    ("tokens", "/tokens/"),
    ("api-docs", "/api/docs/"),
]


def log_in(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.locator("form[action$='/accounts/login/'] button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    if "/accounts/login/" in page.url:
        sys.exit(f"Could not sign in as {username} at {base_url}: check the username and password.")


def newest_declaration(page: Page, base_url: str) -> str | None:
    page.goto(f"{base_url}/declarations/")
    hrefs = page.locator("a[href^='/declarations/']").evaluate_all(
        "links => links.map(link => link.getAttribute('href'))"
    )
    return next((href for href in hrefs if re.fullmatch(r"/declarations/\d+/", href)), None)


def shoot(page: Page, url: str, path: Path, *, expect_ok: bool = True) -> bool:
    response = page.goto(url)
    page.wait_for_load_state("networkidle")
    if expect_ok and response is not None and response.status != 200:
        print(f"skipped {url}: HTTP {response.status}")
        return False
    # caret="initial": hiding the caret would add a <style> the portal's CSP refuses.
    page.screenshot(path=path, full_page=True, caret="initial")
    print(f"saved {path}")
    return True


def declare_with_a_plan(page: Page, base_url: str, path: Path) -> None:
    page.goto(f"{base_url}/declare/")
    page.wait_for_load_state("networkidle")
    first_plan = page.locator("input[name=response_plan]").first
    if first_plan.count():
        first_plan.check()
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)  # the duplicate warning arrives by htmx
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=path, full_page=True, caret="initial")
    print(f"saved {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", help="the running portal, such as http://127.0.0.1:8000")
    parser.add_argument("username")
    parser.add_argument("password", nargs="?", help="or set PORTAL_SCREENSHOT_PASSWORD")
    parser.add_argument("folder", type=Path, help="where to save the screenshots")
    parser.add_argument("--declaration", type=int, help="the declaration page to show (default: the newest)")
    parser.add_argument("--chromium", default=CHROMIUM, help=f"the browser to drive (default {CHROMIUM})")
    args = parser.parse_args()
    password = args.password or os.environ.get("PORTAL_SCREENSHOT_PASSWORD")
    if not password:
        parser.error("give the password, or set PORTAL_SCREENSHOT_PASSWORD")
    base_url = args.base_url.rstrip("/")
    args.folder.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            for width, height in SIZES:
                context = browser.new_context(viewport={"width": width, "height": height})
                page = context.new_page()
                log_in(page, base_url, args.username, password)
                declare_with_a_plan(page, base_url, args.folder / f"declare-{width}.png")
                declaration = (
                    f"/declarations/{args.declaration}/" if args.declaration else newest_declaration(page, base_url)
                )
                if declaration:
                    shoot(page, base_url + declaration, args.folder / f"declaration-{width}.png")
                else:
                    print("skipped the declaration page: there is no declaration yet")
                for name, path in PAGES:
                    shoot(page, base_url + path, args.folder / f"{name}-{width}.png")
                context.close()
        finally:
            browser.close()


if __name__ == "__main__":
    main()
