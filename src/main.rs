fn main() {
    std::process::exit(streamforge::cli::main());
}
