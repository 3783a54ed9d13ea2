//! The plugin contract `tollgate:plugin@0.2.0` beside 0.1.0, in one test binary: lazy bodies,
//! upstream failures told to the response phase, state for locks and caches and batched counters
//! (in memory, on one Redis and on a Redis Cluster), host-side JWT verification and the
//! idempotency plugin built on all of them.

#![allow(clippy::unwrap_used)]

#[path = "../e2e/auth_support/mod.rs"]
mod auth_support;
mod support;

mod idempotency_key_replays_and_refuses;
mod lazy_bodies_are_read_only_when_asked;
mod state_incr_many_batches_counters;
mod state_locks_and_values_memory_and_redis;
mod state_on_redis_cluster_behaves_like_one_redis;
mod upstream_failure_reaches_the_response_phase;
