//! The open-loop order driver: exact rate, per-order ack log, instance-change detection.
