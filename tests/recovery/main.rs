//! Recovery: restarts and crashes, hand-made and damaged directories (most
//! of them found by the `open_dir` fuzz target), reclaim over damage, and
//! random corruption of closed caches.
//!
//! A file's tests run on their own with a filter on its module:
//! `cargo test --release --test recovery recovery_restart::`.

#[path = "../fault_model/mod.rs"]
mod fault_model;
#[path = "../handmade/mod.rs"]
mod handmade;

mod compaction_of_a_damaged_segment;
mod corruption;
mod eviction_after_interrupted_promotion;
mod hint_rewrite_keeps_what_open_read;
mod reclaim_keeps_unknown_records;
mod reclaim_leaves_no_dangling_entries;
mod reclaim_of_damage_in_probation_hides_main_values;
mod reclaim_segments_out_of_order;
mod recovery_after_lost_history;
mod recovery_checkpoint_versions;
mod recovery_clock_at_the_end_of_time;
mod recovery_damaged_record_under_hint;
mod recovery_equal_sequence_numbers;
mod recovery_hint_disagrees_with_segment;
mod recovery_impossible_sequence_numbers;
mod recovery_key_in_both_logs;
mod recovery_large_open;
mod recovery_main_value_under_probation;
mod recovery_no_resurrection;
mod recovery_restart;
mod recovery_split_key_out_of_numbers;
mod recovery_split_key_with_empty_key;
mod recovery_unreadable_entries;
mod recovery_unreadable_entry_stays;
mod recovery_unreadable_tombstone_order;
mod tags_invalidation;
