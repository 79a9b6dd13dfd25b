#!/usr/bin/env bash
# Retention at scale: 1,000,000 events, each with a delivery and an attempt, all in
# one past day (the UTC day before yesterday), then everything before yesterday
# goes. With daily partitions that is one DROP of the day; with an older build
# (HOOKRELAY_BIN=<build before partitioning>) the equivalent DELETEs.
SEED_END="date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '1 day' - interval '1 second'" \
SEED_STEP="86 ms" \
CUTOFF="date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '1 day'" \
QUERIES=0 exec bash "$(dirname "$0")/console-queries.sh"
