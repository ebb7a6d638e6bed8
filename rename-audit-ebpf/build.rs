//! Atomic compare-and-swap and exchange on map values (storm slots) need BPF
//! ISA v3; bpf-linker does the code generation, so the CPU is a link argument.
fn main() {
    println!("cargo:rustc-link-arg=--cpu=v3");
}
