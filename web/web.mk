# Dashboard front-end: `make web` rebuilds crates/pingan-query/assets from web/ (needs Node + npm).
# The built bundle is committed, so `cargo build` never needs Node.

.PHONY: web
web: ## Rebuild the dashboard bundle (npm ci + esbuild) into crates/pingan-query/assets
	cd web && npm ci --no-audit --no-fund && npm run build
