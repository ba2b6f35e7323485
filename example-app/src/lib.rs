//! The event-sourced order service that handover migrates.
