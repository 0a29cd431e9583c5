//! Unit tests of the rule engine (filled below).
