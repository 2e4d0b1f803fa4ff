//! A lock-free multi-producer multi-consumer ring of `T: Pod` (to come).
