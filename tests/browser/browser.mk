# Included by the top-level Makefile: the QR form in a real headless Chromium (issue 3).

.PHONY: test-browser
test-browser: up ## QR form end to end in headless Chromium (Debian chromium + playwright-core); screenshot in target/artifacts/
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium"; apt-get install -y chromium >/dev/null; }
	bash tests/browser/run.sh
