# deploy/local/services.mk -- local Kafka + ClickHouse targets.
# Included by the top-level Makefile:  include deploy/local/services.mk
# Pick one service with SERVICE=kafka or SERVICE=clickhouse (default: all).
# CLUSTER=1 (or the *-cluster targets) runs the same on the local cluster:
# three brokers, ZooKeeper, two ClickHouse replicas (deploy/local/cluster/).
# See deploy/local/README.md.

SERVICES_MK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
SERVICE ?= all
# deploy/local/ or deploy/local/cluster/, by CLUSTER=1
SERVICES_SCRIPTS = $(SERVICES_MK_DIR)/$(if $(filter 1 yes true,$(CLUSTER)),cluster/)

.PHONY: up down status up-cluster down-cluster status-cluster smoke-cluster

up: ## Install (first run) and start local Kafka 4 (KRaft) + ClickHouse, create topics [SERVICE=all|kafka|clickhouse] [CLUSTER=1]
	@bash $(SERVICES_SCRIPTS)up.sh $(SERVICE)

down: ## Stop the local Kafka/ClickHouse started by `make up` (data kept; PURGE=1 deletes it) [SERVICE=...] [CLUSTER=1]
	@bash $(SERVICES_SCRIPTS)down.sh $(SERVICE) $(if $(filter 1 yes true,$(PURGE)),--purge)

status: ## Show whether local Kafka and ClickHouse are running and answering [CLUSTER=1]
	@bash $(SERVICES_SCRIPTS)status.sh

up-cluster: ## Local cluster: 3 KRaft brokers (RF 3, min ISR 2), ZooKeeper, 2 ClickHouse replicas [SERVICE=all|kafka|zookeeper|clickhouse|NODE]
	@bash $(SERVICES_MK_DIR)/cluster/up.sh $(SERVICE)

down-cluster: ## Stop exactly what up-cluster started (pid files; PURGE=1 deletes its data) [SERVICE=...]
	@bash $(SERVICES_MK_DIR)/cluster/down.sh $(SERVICE) $(if $(filter 1 yes true,$(PURGE)),--purge)

status-cluster: ## Per node of the local cluster: running, answering, replicated; quorum leader, under-replicated partitions
	@bash $(SERVICES_MK_DIR)/cluster/status.sh

smoke-cluster: ## Prove the local cluster: RF 3 topic and ReplicatedMergeTree ON CLUSTER through kill -9 and restart
	@bash $(SERVICES_MK_DIR)/cluster/smoke.sh
