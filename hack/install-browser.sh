#!/usr/bin/env bash
# Installs Debian's Chromium and its chromedriver when missing: the dashboard is tested in a
# real browser, headless, driven through WebDriver (tests/support/browser.rs).
exec "$(dirname "$0")/install-packages.sh" "chromium chromedriver" chromium chromium-driver fonts-dejavu-core
