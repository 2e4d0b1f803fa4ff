//! Placeholder: replaced by the multi-process tests.
