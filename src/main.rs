//! herald: skeleton entry point; the service foundation replaces this.
fn main() {}
