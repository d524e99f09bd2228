"""Debian's Chromium, as every test that drives a browser launches it through Playwright
(never a browser of Playwright's own download)."""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
PHONE = {"width": 375, "height": 812}  # the viewport the page is laid out for first
