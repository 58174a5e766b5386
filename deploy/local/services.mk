# deploy/local/services.mk -- local Kafka + ClickHouse targets.
# Included by the top-level Makefile:  include deploy/local/services.mk
# Pick one service with SERVICE=kafka or SERVICE=clickhouse (default: all).
# See deploy/local/README.md.

SERVICES_MK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
SERVICE ?= all

.PHONY: up down status

up: ## Install (first run) and start local Kafka 4 (KRaft) + ClickHouse, create topics [SERVICE=all|kafka|clickhouse]
	@bash $(SERVICES_MK_DIR)/up.sh $(SERVICE)

down: ## Stop the local Kafka/ClickHouse started by `make up` (data kept; PURGE=1 deletes it) [SERVICE=...]
	@bash $(SERVICES_MK_DIR)/down.sh $(SERVICE) $(if $(filter 1 yes true,$(PURGE)),--purge)

status: ## Show whether local Kafka and ClickHouse are running and answering
	@bash $(SERVICES_MK_DIR)/status.sh
