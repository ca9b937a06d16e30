/// The server allocates and frees on every call (requests, documents, instances' host
/// state); mimalloc does that for less than glibc's malloc (issue 16).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kiln_host::cli::main()
}
