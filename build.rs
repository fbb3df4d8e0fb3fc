//! Tells the integration tests whether PostgreSQL is configured, so that without
//! `TEST_DATABASE_URL` the PostgreSQL variants of `backend_tests!` show as *ignored* in
//! `cargo test`'s summary instead of passing having checked nothing (tests/it/helpers.rs).
//! Only tests read the cfg: the library and the server binary are the same either way.
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    println!("cargo::rustc-check-cfg=cfg(portcullis_pg_tests)");
    if std::env::var_os("TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=portcullis_pg_tests");
    }
}
