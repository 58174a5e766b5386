# Included by the top-level Makefile: the QR form (issue 3) and the dashboard (issue 6) in a real
# headless Chromium. Screenshots go to target/artifacts/ (not committed).

.PHONY: browser-deps
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { echo "==> installing Debian's chromium and CJK fonts"; \
		(apt-get install -y chromium fonts-noto-cjk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y chromium fonts-noto-cjk >/dev/null; }); }

.PHONY: test-browser
test-browser: up build browser-deps ## QR form and dashboard end to end in headless Chromium; screenshots in target/artifacts/
	bash tests/browser/run.sh
	bash tests/browser/dashboard.sh
