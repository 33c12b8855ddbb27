//! Integration tests of the simulator: determinism of its feed files, and the consistency and
//! realism of what it writes to a real lake.

mod determinism;
mod lake;
