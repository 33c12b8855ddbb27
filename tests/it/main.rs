//! End-to-end tests of the `bright` command: the CLI over a generated lake, an independent
//! reader (Python deltalake + DuckDB) agreeing with it, and `bright demo` serving `/health`.

mod cli;
mod demo;
mod reader;
mod support;
