//! `pingan`: one operator binary, a subcommand per service. It parses flags, loads the
//! configuration, starts telemetry and calls the service library's `run`; nothing else.

mod cli;
mod commands;
mod config;
mod demo;
mod dlq;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
