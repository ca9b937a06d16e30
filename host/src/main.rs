fn main() -> std::process::ExitCode {
    kiln_host::cli::main()
}
