use std::process::ExitCode;

fn main() -> ExitCode {
    stateless_operator::cli::main()
}
