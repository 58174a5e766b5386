# deploy/deploy.mk -- container image, Helm chart, systemd units, Compose file, Prometheus rules
# and Grafana dashboards. Included by the top-level Makefile. See deploy/README.md.

DEPLOY_MK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

.PHONY: test-deploy image helm-template

test-deploy: ## Deployment checks: Containerfile, helm lint/template + manifests, systemd, Compose, promtool rules/tests, dashboards vs the code's metrics (tools build once into .cache/tools)
	$(CARGO) build --locked -p pingan
	@bash $(DEPLOY_MK_DIR)/test.sh

image: ## Build the container image localhost/pingan:dev with buildah and smoke-test it (slow: a release build inside the image; needs root)
	@bash $(DEPLOY_MK_DIR)/image/build.sh

helm-template: ## Render the Helm chart with its default values to stdout
	@bash -c 'source $(DEPLOY_MK_DIR)/tools/lib.sh && "$$(ensure_tool helm)" template pingan $(DEPLOY_MK_DIR)/helm/pingan'
