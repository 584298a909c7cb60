//! The `fastapihooks` command. Everything but the process exit lives in the library.

fn main() -> std::process::ExitCode {
    fastapihooks_cli::run_with(std::env::args_os())
}
