# The extras every set-up installs (sourced by setup.sh and lock.sh: one list for both).
EXTRAS=${DATAPRUNE_EXTRAS:-offline-models,demo,dev,bench,langchain,llamaindex,langgraph,autogen,peft,ray}
