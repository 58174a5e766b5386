//! The `pingan` operator binary.
fn main() {}
